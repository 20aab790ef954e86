package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxDepth bounds how deeply a frame's arrays and objects nest. Requests
// nest four levels; a frame of a million "[" must not cost the host more
// than a scan.
const maxDepth = 64

// checkShape refuses, before any parsing builds values, a frame that is
// not UTF-8 JSON, nests deeper than maxDepth, or repeats a key in one
// object: the host would read the first of two equal keys and the
// extension's JSON.parse the last, so the two sides could disagree about
// what a request says. It streams the frame, holding one key set per open
// object.
func checkShape(body []byte) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("the frame is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type level struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return fmt.Errorf("the frame is not valid JSON")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("the frame is not valid JSON")
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.expectKey {
				if key, ok := tok.(string); ok {
					if top.keys[key] {
						return fmt.Errorf("the frame repeats the key %q in one object", truncate(key, 64))
					}
					top.keys[key] = true
					top.expectKey = false
					continue
				}
			} else {
				top.expectKey = true // this token is the value
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxDepth {
				return fmt.Errorf("the frame nests deeper than %d levels", maxDepth)
			}
			object := tok == json.Delim('{')
			l := level{object: object, expectKey: object}
			if object {
				l.keys = map[string]bool{}
			}
			stack = append(stack, l)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
