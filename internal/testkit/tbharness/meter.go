//go:build !windows

package tbharness

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// SetLocale makes Thunderbird's UI locale the given one (e.g. "it") without
// a language pack: the locale is added to the available ones and
// requested. Thunderbird's own texts stay English (it has no others), but
// an add-on installed afterwards uses its _locales/<locale> messages and
// i18n.getUILanguage() answers the locale. Call it before InstallAddon: an
// add-on picks its messages when it starts.
func (tb *TB) SetLocale(ctx context.Context, locale string) error {
	var got string
	if err := tb.Chrome(ctx, `
const [locale] = arguments;
Services.locale.availableLocales = [locale, "en-US"];
Services.locale.requestedLocales = [locale];
return Services.locale.appLocaleAsBCP47;`, []any{locale}, &got); err != nil {
		return err
	}
	if got != locale {
		return fmt.Errorf("tbharness: the UI locale is %q after asking for %q", got, locale)
	}
	return nil
}

// Meter is what the popup's strength meter under the new password shows
// (extension/lib/strength.js).
type Meter struct {
	// Shown: the meter is visible (change view, a new password typed).
	Shown bool `json:"shown"`
	// State is "empty", "pending" (an estimate is on its way), "ready" or
	// "unavailable" (the estimator could not run).
	State string `json:"state"`
	// Score is the estimate's score 0–4 (-1 without one).
	Score int `json:"score"`
	// Level is very_weak, weak, fair, good or strong ("" without an estimate).
	Level string `json:"level"`
	// Word is the meter's line, e.g. "Sicurezza: debole".
	Word string `json:"word"`
	// Warning and Suggestions are the estimator's feedback, as shown.
	Warning     string   `json:"warning"`
	Suggestions []string `json:"suggestions"`
	// BelowMinimum: the estimate is below the administrator's minimum.
	BelowMinimum bool `json:"belowMinimum"`
	// Minimum is the line naming the administrator's minimum ("" when
	// hidden: no minimum, or not the change view).
	Minimum string `json:"minimum"`
}

const meterJS = `
const $ = id => document.getElementById(id);
const box = $("meter");
const shown = el => !!el && !el.closest("[hidden]");
const score = box.dataset.score === "" || box.dataset.score === undefined ? -1 : Number(box.dataset.score);
return {
  shown: shown(box),
  state: box.dataset.state || "",
  score,
  level: box.dataset.level || "",
  word: $("meter-word").textContent,
  warning: shown($("meter-warning")) ? $("meter-warning").textContent : "",
  suggestions: shown($("meter-suggestions")) ? [...$("meter-suggestions").children].map(li => li.textContent) : [],
  belowMinimum: box.hasAttribute("data-below-minimum"),
  minimum: shown($("meter-minimum")) ? $("meter-minimum").textContent : "",
};`

// Meter returns what the strength meter shows now.
func (p *Popup) Meter(ctx context.Context) (Meter, error) {
	var m Meter
	err := p.Eval(ctx, meterJS, nil, &m)
	return m, err
}

// TypeNew types password into the new-password field like a user (focus,
// value, input event) and waits, up to timeout, until the meter shows its
// estimate (the first keystroke starts the estimator).
func (p *Popup) TypeNew(ctx context.Context, password string, timeout time.Duration) (Meter, error) {
	if err := p.Eval(ctx, `
const [value] = arguments;
const input = document.getElementById("new");
if (input.closest("[hidden]")) throw new Error("the new-password field is hidden");
input.focus();
input.value = value;
input.dispatchEvent(new Event("input", { bubbles: true }));`, []any{password}, nil); err != nil {
		return Meter{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.WaitFor(wctx, `return document.getElementById("meter").dataset.state !== "pending";`, nil, 20*time.Millisecond, nil); err != nil {
		m, _ := p.Meter(ctx)
		return m, fmt.Errorf("tbharness: the meter did not show an estimate: %w (it shows %+v)", err, m)
	}
	return p.Meter(ctx)
}

// WaitFieldRule waits, up to timeout, until the field's error names rule
// (its data-rules), and returns what the popup shows.
func (p *Popup) WaitFieldRule(ctx context.Context, field, rule string, timeout time.Duration) (PopupView, error) {
	deadline := time.Now().Add(timeout)
	for {
		v, err := p.View(ctx)
		if err == nil && slices.Contains(v.FieldRules[field], rule) {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("tbharness: the %s field does not report %s: %+v (%v)", field, rule, v, err)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
