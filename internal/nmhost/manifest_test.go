package nmhost

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testkit/wine"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func TestManifestJSONGolden(t *testing.T) {
	tests := []struct {
		golden string
		m      Manifest
	}{
		{"manifest.golden.json", NewManifest("/usr/local/bin/credsync")},
		{"manifest-windows.golden.json", NewManifest(`C:\Program Files\credsync\credsync.exe`, ExtensionID, "test@example.org")},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := tt.m.JSON()
			if err != nil {
				t.Fatalf("JSON() = %v", err)
			}
			file := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON() =\n%s\nwant (%s)\n%s", got, file, want)
			}
			// What we write, we read back unchanged.
			back, err := ParseManifest(got)
			if err != nil {
				t.Fatalf("ParseManifest(JSON()) = %v", err)
			}
			if !reflect.DeepEqual(back, tt.m) {
				t.Errorf("ParseManifest(JSON()) = %+v, want %+v", back, tt.m)
			}
		})
	}
}

func TestNewManifest(t *testing.T) {
	tests := []struct {
		ids  []string
		want []string
	}{
		{nil, []string{ExtensionID}},
		{[]string{""}, []string{ExtensionID}},
		{[]string{"a@x"}, []string{"a@x"}},
		{[]string{"a@x", "b@x", "a@x", ""}, []string{"a@x", "b@x"}},
	}
	for _, tt := range tests {
		m := NewManifest("/bin/credsync", tt.ids...)
		if !reflect.DeepEqual(m.AllowedExtensions, tt.want) {
			t.Errorf("NewManifest(_, %q).AllowedExtensions = %q, want %q", tt.ids, m.AllowedExtensions, tt.want)
		}
		if m.Name != HostName || m.Type != "stdio" || m.Path != "/bin/credsync" || m.Description == "" {
			t.Errorf("NewManifest(_, %q) = %+v", tt.ids, m)
		}
	}
}

const goodManifest = `{"name":"credsync","description":"d","path":"/bin/credsync","type":"stdio","allowed_extensions":["credsync@credsync.org"]}`

func TestParseManifestAccepts(t *testing.T) {
	tests := map[string]string{
		"compact":      goodManifest,
		"whitespace":   "\n  " + strings.ReplaceAll(goodManifest, ",", " ,\n ") + "\n\n",
		"other order":  `{"allowed_extensions":["credsync@credsync.org"],"type":"stdio","path":"/bin/credsync","description":"d","name":"credsync"}`,
		"empty list":   `{"name":"credsync","description":"d","path":"/bin/credsync","type":"stdio","allowed_extensions":[]}`,
		"escaped char": `{"name":"credsync","description":"d","path":"\/bin\/credsync","type":"stdio","allowed_extensions":["credsync@credsync.org"]}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ParseManifest([]byte(in))
			if err != nil {
				t.Fatalf("ParseManifest() = %v", err)
			}
			if m.Name != "credsync" || m.Path != "/bin/credsync" || m.Type != "stdio" || m.Description != "d" {
				t.Errorf("ParseManifest() = %+v", m)
			}
		})
	}
}

func TestParseManifestRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, "not a JSON object"},
		{"not JSON", `name=credsync`, "not a JSON object"},
		{"array", `[` + goodManifest + `]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"string", `"credsync"`, "not a JSON object"},
		{"truncated", goodManifest[:len(goodManifest)-1], "unexpected EOF"},
		{"trailing comma", strings.Replace(goodManifest, `"]}`, `"],}`, 1), "invalid character"},
		{"trailing data", goodManifest + `x`, "data after"},
		{"second object", goodManifest + goodManifest, "data after"},
		{"comment", "// x\n" + goodManifest, "not a JSON object"},
		{"invalid UTF-8", strings.Replace(goodManifest, `"d"`, "\"\xff\"", 1), "UTF-8"},
		{"BOM", "\ufeff" + goodManifest, "not a JSON object"},
		{"name number", strings.Replace(goodManifest, `"name":"credsync"`, `"name":1`, 1), `"name": want a string, got a number`},
		{"name null", strings.Replace(goodManifest, `"name":"credsync"`, `"name":null`, 1), `"name": want a string, got null`},
		{"path object", strings.Replace(goodManifest, `"path":"/bin/credsync"`, `"path":{}`, 1), `"path": want a string, got an object`},
		{"type bool", strings.Replace(goodManifest, `"type":"stdio"`, `"type":true`, 1), `"type": want a string, got a boolean`},
		{"description array", strings.Replace(goodManifest, `"description":"d"`, `"description":["d"]`, 1), `"description": want a string, got an array`},
		{"allowed string", strings.Replace(goodManifest, `["credsync@credsync.org"]`, `"credsync@credsync.org"`, 1), `"allowed_extensions": want an array of strings, got a string`},
		{"allowed null", strings.Replace(goodManifest, `["credsync@credsync.org"]`, `null`, 1), `"allowed_extensions": want an array of strings, got null`},
		{"allowed element null", strings.Replace(goodManifest, `["credsync@credsync.org"]`, `["credsync@credsync.org",null]`, 1), "element 1: want a string, got null"},
		{"allowed element number", strings.Replace(goodManifest, `["credsync@credsync.org"]`, `[1]`, 1), "element 0: want a string, got a number"},
		{"unknown member", strings.Replace(goodManifest, `{`, `{"allowed_origins":[],`, 1), `"allowed_origins": unknown member`},
		{"wrong case", strings.Replace(goodManifest, `"name"`, `"Name"`, 1), `"Name": unknown member`},
		{"duplicate", strings.Replace(goodManifest, `{`, `{"name":"other",`, 1), `"name" appears twice`},
		{"missing path", strings.Replace(goodManifest, `"path":"/bin/credsync",`, ``, 1), "missing member(s): path"},
		{"empty object", `{}`, "missing member(s): name, description, path, type, allowed_extensions"},
		{"oversize", `{"description":"` + strings.Repeat("x", MaxManifestSize) + `"}`, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseManifest() = %+v, nil; want error containing %q", m, tt.want)
			}
			if !errors.Is(err, ErrInvalidManifest) {
				t.Errorf("ParseManifest() error %v does not wrap ErrInvalidManifest", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest() = %v, want it to contain %q", err, tt.want)
			}
			if !reflect.DeepEqual(m, Manifest{}) {
				t.Errorf("ParseManifest() returned %+v with its error, want the zero Manifest", m)
			}
		})
	}
}

func TestReadManifest(t *testing.T) {
	dir := wine.TempDir(t)
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("good", func(t *testing.T) {
		m, err := ReadManifest(write("good.json", goodManifest))
		if err != nil {
			t.Fatalf("ReadManifest() = %v", err)
		}
		if !m.Allows(ExtensionID) {
			t.Errorf("ReadManifest() = %+v, want it to allow %s", m, ExtensionID)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		pad := strings.Repeat(" ", MaxManifestSize-len(goodManifest))
		if _, err := ReadManifest(write("limit.json", goodManifest+pad)); err != nil {
			t.Fatalf("ReadManifest(%d bytes) = %v", MaxManifestSize, err)
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		pad := strings.Repeat(" ", MaxManifestSize-len(goodManifest)+1)
		_, err := ReadManifest(write("over.json", goodManifest+pad))
		if !errors.Is(err, ErrManifestTooLarge) || !errors.Is(err, ErrInvalidManifest) {
			t.Fatalf("ReadManifest(%d bytes) = %v, want ErrManifestTooLarge and ErrInvalidManifest", MaxManifestSize+1, err)
		}
	})
	t.Run("malformed names the file", func(t *testing.T) {
		p := write("bad.json", `{"name":`)
		_, err := ReadManifest(p)
		if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), p) {
			t.Fatalf("ReadManifest() = %v, want ErrInvalidManifest naming %s", err, p)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := ReadManifest(filepath.Join(dir, "nope.json"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadManifest(missing) = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := ReadManifest(dir)
		if !errors.Is(err, ErrInvalidManifest) {
			t.Fatalf("ReadManifest(dir) = %v, want ErrInvalidManifest", err)
		}
	})
}

func TestAllows(t *testing.T) {
	m := Manifest{AllowedExtensions: []string{ExtensionID, "other@example.org"}}
	tests := []struct {
		id   string
		want bool
	}{
		{ExtensionID, true},
		{"other@example.org", true},
		{"", false},
		{"CREDSYNC@credsync.org", false},
		{"credsync@credsync.org ", false},
		{"credsync", false},
		{"evil@example.org", false},
	}
	for _, tt := range tests {
		if got := m.Allows(tt.id); got != tt.want {
			t.Errorf("Allows(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	if (Manifest{AllowedExtensions: []string{""}}).Allows("") {
		t.Error(`Allows("") with "" listed = true, want false`)
	}
	if (Manifest{}).Allows(ExtensionID) {
		t.Error("Allows() on an empty list = true, want false")
	}
}

func TestValidate(t *testing.T) {
	good := NewManifest("/usr/bin/credsync")
	tests := []struct {
		name string
		goos string
		edit func(*Manifest)
		want string // "" = valid
	}{
		{"good", "linux", func(*Manifest) {}, ""},
		{"good windows", "windows", func(m *Manifest) { m.Path = `C:\credsync\credsync.exe` }, ""},
		{"hyphen", "linux", func(m *Manifest) { m.Name = "cred-sync" }, "not a valid host name"},
		{"other name", "linux", func(m *Manifest) { m.Name = "org.example.other" }, `want "credsync"`},
		{"type", "linux", func(m *Manifest) { m.Type = "pkcs11" }, `type is "pkcs11"`},
		{"empty path", "linux", func(m *Manifest) { m.Path = "" }, "path is empty"},
		{"relative path", "linux", func(m *Manifest) { m.Path = "bin/credsync" }, "not absolute"},
		{"unix path on windows", "windows", func(m *Manifest) { m.Path = "/usr/bin/credsync" }, "not absolute"},
		{"no IDs", "linux", func(m *Manifest) { m.AllowedExtensions = nil }, "allowed_extensions is empty"},
		{"empty ID", "linux", func(m *Manifest) { m.AllowedExtensions = []string{ExtensionID, ""} }, "empty ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good
			m.AllowedExtensions = append([]string(nil), good.AllowedExtensions...)
			tt.edit(&m)
			err := m.Validate(tt.goos)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate(%q) = %v, want nil", tt.goos, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate(%q) = %v, want an error containing %q", tt.goos, err, tt.want)
			}
		})
	}
}

func TestCheckCaller(t *testing.T) {
	p := filepath.Join(wine.TempDir(t), "credsync.json")
	if err := os.WriteFile(p, []byte(goodManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckCaller(p, ExtensionID); err != nil {
		t.Errorf("CheckCaller(allowed) = %v", err)
	}
	if _, err := CheckCaller(p, "evil@example.org"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("CheckCaller(not allowed) = %v, want ErrNotAllowed", err)
	}
	if _, err := CheckCaller(p+".missing", ExtensionID); err == nil || errors.Is(err, ErrNotAllowed) {
		t.Errorf("CheckCaller(missing manifest) = %v, want a read error", err)
	}
}
