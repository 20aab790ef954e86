//go:build !windows

package nmhost

import (
	"errors"
	"fmt"
)

// SystemRegistry returns a stub outside Windows: there is no registry, and
// no Location outside Windows names a registry key, so it is never used
// there. Every method fails with errors.ErrUnsupported.
func SystemRegistry() Registry { return noRegistry{} }

type noRegistry struct{}

func (noRegistry) ReadDefault(k RegistryKey) (string, error) {
	return "", fmt.Errorf("%s: %w", k, errors.ErrUnsupported)
}

func (noRegistry) WriteDefault(k RegistryKey, _ string) error {
	return fmt.Errorf("%s: %w", k, errors.ErrUnsupported)
}

func (noRegistry) DeleteKey(k RegistryKey) error {
	return fmt.Errorf("%s: %w", k, errors.ErrUnsupported)
}
