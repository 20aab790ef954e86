// Command zxcvbn-go-golden fills in upstream zxcvbn-go's estimates for the
// passwords of a golden file: internal/policy's test checks that the
// patched copy in internal/third_party/zxcvbn-go gives the same, and
// `scripts/third-party check` that the file is what upstream gives.
//
//	go run . <golden.json >golden.json.new
package main

import (
	"encoding/json"
	"log"
	"os"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
)

type entry struct {
	Password   string   `json:"password"`
	UserInputs []string `json:"userInputs,omitempty"`
	Entropy    float64  `json:"entropy"`
	Score      int      `json:"score"`
}

func main() {
	var entries []entry
	if err := json.NewDecoder(os.Stdin).Decode(&entries); err != nil {
		log.Fatal(err)
	}
	for i, e := range entries {
		r := zxcvbn.PasswordStrength(e.Password, e.UserInputs)
		entries[i].Entropy, entries[i].Score = r.Entropy, r.Score
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "\t")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(entries); err != nil {
		log.Fatal(err)
	}
}
