package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

// aruba are Aruba PEC's published rules, as the aruba back-end declares them.
var aruba = &Rules{MinLength: 8, MaxLength: 256, NeedsUpper: true, NeedsLower: true, NeedsDigit: true, NeedsSpecial: true,
	Specials: `!#$%&()*+,./-:;=?[]_{|}\@`}

func TestCheck(t *testing.T) {
	cases := []struct {
		name, current, next string
		rules               *Rules
		rule                string
	}{
		{"ok without rules", "old", "new", nil, ""},
		{"empty", "old", "", nil, RuleEmpty},
		{"universal too long", "old", strings.Repeat("a", MaxBytes+1), nil, RuleTooLong},
		{"universal limit is inclusive", "old", strings.Repeat("a", MaxBytes), nil, ""},
		{"invalid UTF-8", "old", "ab\xffcd", nil, RuleInvalidUTF8},
		{"NUL", "old", "a\x00b", nil, RuleControlCharacters},
		{"LF", "old", "a\nb", nil, RuleControlCharacters},
		{"same as current", "Same-1234!", "Same-1234!", aruba, RuleSameAsCurrent},
		{"no current given", "", "anything", nil, ""},
		{"aruba ok", "old", "Aruba-2026!", aruba, ""},
		{"aruba every special", "old", `Aa1!#$%&()*+,./-:;=?[]_{|}\@`, aruba, ""},
		{"aruba too short", "old", "Ab1!", aruba, RuleTooShort},
		{"aruba exactly 8", "old", "Abcdef1!", aruba, ""},
		{"aruba 256", "old", "Ab1!" + strings.Repeat("x", 252), aruba, ""},
		{"aruba 257", "old", "Ab1!" + strings.Repeat("x", 253), aruba, RuleTooLong},
		{"aruba no upper", "old", "aruba-2026!", aruba, RuleNeedsUpper},
		{"aruba no lower", "old", "ARUBA-2026!", aruba, RuleNeedsLower},
		{"aruba no digit", "old", "Aruba-pec!", aruba, RuleNeedsDigit},
		{"aruba no special", "old", "Aruba2026x", aruba, RuleNeedsSpecial},
		{"aruba space", "old", "Aruba 2026!", aruba, RuleBadCharacter},
		{"aruba quote not in list", "old", `Aruba"2026!`, aruba, RuleBadCharacter},
		{"aruba accented letter", "old", "Arubà-2026!", aruba, RuleBadCharacter},
		{"aruba tilde", "old", "Aruba~2026!", aruba, RuleBadCharacter},
		{"byte limit", "old", strings.Repeat("é", 62), &Rules{MaxBytes: 123}, RuleTooLong},
		{"byte limit ok", "old", strings.Repeat("é", 61), &Rules{MaxBytes: 123}, ""},
		{"characters counted, not bytes", "old", "ééééééé", &Rules{MinLength: 8}, RuleTooShort},
		{"forbidden", "old", "pass word", &Rules{Forbidden: " \t"}, RuleBadCharacter},
		{"any special without a list", "old", "Pass word1", &Rules{NeedsSpecial: true}, ""},
		{"unicode upper counts without a list", "old", "Élan", &Rules{NeedsUpper: true}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Check(c.current, c.next, c.rules)
			got := ""
			if v != nil {
				got = v.Rule
				if v.Message == "" || c.next != "" && strings.Contains(v.Message, c.next) {
					t.Fatalf("message %q leaks or is empty", v.Message)
				}
			}
			if got != c.rule {
				t.Fatalf("Check() = %v; want rule %q", v, c.rule)
			}
		})
	}
}

func TestViolationsListsEveryBrokenRule(t *testing.T) {
	got := aruba.Violations("ab")
	var rules []string
	for _, v := range got {
		rules = append(rules, v.Rule)
	}
	want := "too_short needs_upper needs_digit needs_special"
	if strings.Join(rules, " ") != want {
		t.Fatalf("Violations() = %v; want %s", rules, want)
	}
	if (*Rules)(nil).Violations("x") != nil {
		t.Fatal("nil rules refused something")
	}
}

func TestConfirm(t *testing.T) {
	if v := Confirm("a", "a"); v != nil {
		t.Fatalf("Confirm(same) = %v", v)
	}
	if v := Confirm("Secret-1!", "Secret-2!"); v == nil || v.Rule != RuleMismatch || strings.Contains(v.Message, "Secret") {
		t.Fatalf("Confirm(differ) = %v", v)
	}
}

// The popup mirrors the rules from hello: the JSON names are a contract.
func TestRulesJSON(t *testing.T) {
	b, err := json.Marshal(aruba)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"minLength":8,"maxLength":256,"needsUpper":true,"needsLower":true,"needsDigit":true,"needsSpecial":true,"specials":"!#$%\u0026()*+,./-:;=?[]_{|}\\@"}`
	if string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
	var back Rules
	if err := json.Unmarshal(b, &back); err != nil || back != *aruba {
		t.Fatalf("round trip %+v, %v", back, err)
	}
}

func TestRulesString(t *testing.T) {
	if got := aruba.String(); got != `8-256 characters, an upper-case letter, a lower-case letter, a digit, one of !#$%&()*+,./-:;=?[]_{|}\@` {
		t.Fatalf("String() = %q", got)
	}
	if got := (*Rules)(nil).String(); got != "none known" {
		t.Fatalf("nil String() = %q", got)
	}
	if got := (&Rules{MaxBytes: 123, Forbidden: " "}).String(); got != `at most 123 bytes, none of " "` {
		t.Fatalf("String() = %q", got)
	}
}

func TestRuleFromMessage(t *testing.T) {
	for msg, want := range map[string]string{
		"invalid password: too short":                                            RuleTooShort,
		"invalid password: not enough upper case characters":                     RuleNeedsUpper,
		"invalid password: not enough punctuation characters":                    RuleNeedsSpecial,
		"invalid password: not enough numeric characters":                        RuleNeedsDigit,
		"invalid password: contains invalid characters":                          RuleBadCharacter,
		"La nuova password deve contenere almeno un carattere speciale":          RuleNeedsSpecial,
		"La password deve essere lunga almeno 8 caratteri":                       RuleTooShort,
		"La password deve contenere almeno una lettera MAIUSCOLA":                RuleNeedsUpper,
		"Le password non coincidono":                                             RuleMismatch,
		"La nuova password deve essere diversa da quella attuale":                RuleSameAsCurrent,
		"La password contiene caratteri non consentiti":                          RuleBadCharacter,
		"500 PAM error: BAD PASSWORD: The password is shorter than 8 characters": RuleTooShort,
		"BAD PASSWORD: it is based on a dictionary word":                         RuleTooWeak,
		"Sorry, the password you selected cannot be used because it is too weak": RuleTooWeak,
		"Server error, password not changed":                                     "",
		"":                                                                       "",
	} {
		if got := RuleFromMessage(msg); got != want {
			t.Errorf("RuleFromMessage(%q) = %q; want %q", msg, got, want)
		}
	}
}

func TestNormalizeText(t *testing.T) {
	if got := NormalizeText("  La\u00a0Password \xff ATTUALE\t\r\nnon è\x00corretta "); got != "la password attuale non è corretta" {
		t.Fatalf("NormalizeText() = %q", got)
	}
}
