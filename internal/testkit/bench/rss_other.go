//go:build !linux && !windows

package bench

import (
	"errors"
	"os"
)

func peakRSS(int) (int64, error) {
	return 0, errors.New("peak RSS is measured from /proc, on Linux only")
}

func maxRSS(*os.ProcessState) (int64, bool) { return 0, false }
