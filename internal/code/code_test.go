package code

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tableCodes reads the codes of the PROTOCOL.md table under heading, in
// order: the first cell of each row, in backquotes.
func tableCodes(t *testing.T, doc, heading string) []Code {
	t.Helper()
	section := regexp.MustCompile(`(?ms)^## ` + regexp.QuoteMeta(heading) + `\n(.*?)(?:^## |\z)`).FindStringSubmatch(doc)
	if section == nil {
		t.Fatalf("PROTOCOL.md has no section %q", heading)
	}
	var codes []Code
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\|").FindAllStringSubmatch(section[1], -1) {
		codes = append(codes, Code(m[1]))
	}
	return codes
}

func TestProtocolDocumentsEveryCode(t *testing.T) {
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []struct {
		heading string
		codes   []Code
	}{
		{"Error codes", Host},
		{"Error codes of the extension", Extension},
	} {
		documented := tableCodes(t, string(doc), table.heading)
		if !slices.Equal(documented, table.codes) {
			t.Errorf("PROTOCOL.md %q lists\n  %v\ninternal/code lists\n  %v", table.heading, documented, table.codes)
		}
	}
}

func TestCodesAreDistinct(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range append(slices.Clone(Host), Extension...) {
		if seen[c] {
			t.Errorf("%q listed twice", c)
		}
		seen[c] = true
	}
}

// TestListsHoldEveryConstant: a constant added to code.go but not to Host
// or Extension would escape the PROTOCOL.md check.
func TestListsHoldEveryConstant(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "code.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[Code]bool{}
	for _, c := range append(slices.Clone(Host), Extension...) {
		listed[c] = true
	}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			for _, value := range spec.(*ast.ValueSpec).Values {
				lit, ok := value.(*ast.BasicLit)
				if !ok {
					continue
				}
				if c := Code(strings.Trim(lit.Value, `"`)); !listed[c] {
					t.Errorf("constant %s is in neither Host nor Extension", c)
				}
			}
		}
	}
}
