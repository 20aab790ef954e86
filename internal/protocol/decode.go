package protocol

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
)

// Members are read with gjson from a message already checked to be a
// valid JSON object; each helper checks the JSON type itself, since
// gjson converts silently ("123" reads as the integer 123).

func requiredString(obj gjson.Result, field string, min, max int) (string, *Error) {
	v := obj.Get(field)
	if !v.Exists() {
		return "", invalid(field, fmt.Sprintf("member %q is missing", field))
	}
	return stringValue(v, field, min, max)
}

func stringValue(v gjson.Result, field string, min, max int) (string, *Error) {
	if v.Type != gjson.String {
		return "", invalid(field, fmt.Sprintf("member %q must be a string", field))
	}
	s := v.String()
	if len(s) < min || len(s) > max {
		return "", invalid(field, fmt.Sprintf("member %q must be %d to %d bytes long", field, min, max))
	}
	if !utf8.ValidString(s) {
		return "", invalid(field, fmt.Sprintf("member %q is not valid UTF-8", field))
	}
	return s, nil
}

func optionalString(obj gjson.Result, field string, max int) (string, *Error) {
	v := obj.Get(field)
	if !v.Exists() || v.Type == gjson.Null {
		return "", nil
	}
	return stringValue(v, field, 0, max)
}

func requiredInt(obj gjson.Result, field string, min, max int) (int, *Error) {
	v := obj.Get(field)
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num < float64(min) || v.Num > float64(max) {
		return 0, invalid(field, fmt.Sprintf("member %q must be an integer from %d to %d", field, min, max))
	}
	return int(v.Num), nil
}

// password reads a password member: a non-empty string without NUL, of at
// most flow.MaxPassword bytes. Messages never quote the value.
func password(obj gjson.Result, field string, allowEmpty bool) (string, *Error) {
	min := 1
	if allowEmpty {
		min = 0
	}
	s, err := requiredString(obj, field, min, flow.MaxPassword)
	if err != nil {
		return "", err
	}
	if strings.ContainsRune(s, 0) {
		return "", invalid(field, fmt.Sprintf("member %q contains NUL", field))
	}
	return s, nil
}

// endpointMember reads an optional Endpoint object; null or absent is nil.
// want lists the protocols allowed for this member.
func endpointMember(obj gjson.Result, field string, want ...endpoint.Protocol) (*endpoint.Endpoint, *Error) {
	v := obj.Get(field)
	if !v.Exists() || v.Type == gjson.Null {
		return nil, nil
	}
	return endpointValue(v, field, want...)
}

// endpointValue reads the Endpoint object v, named field in errors.
func endpointValue(v gjson.Result, field string, want ...endpoint.Protocol) (*endpoint.Endpoint, *Error) {
	if !v.IsObject() {
		return nil, invalid(field, fmt.Sprintf("member %q must be an object", field))
	}
	var ep endpoint.Endpoint
	proto, err := requiredString(v, "protocol", 1, 8)
	if err != nil {
		return nil, prefix(field, err)
	}
	ep.Protocol = endpoint.Protocol(proto)
	allowed := false
	for _, p := range want {
		allowed = allowed || p == ep.Protocol
	}
	if !allowed {
		return nil, invalid(field+".protocol", fmt.Sprintf("member %q must be one of %v", field+".protocol", want))
	}
	if ep.Host, err = requiredString(v, "host", 1, 253); err != nil {
		return nil, prefix(field, err)
	}
	if ep.Port, err = requiredInt(v, "port", 1, 65535); err != nil {
		return nil, prefix(field, err)
	}
	socket, err := requiredInt(v, "socketType", 0, 3)
	if err != nil {
		return nil, prefix(field, err)
	}
	ep.Security = endpoint.Security(socket)
	auth, err := requiredInt(v, "authMethod", 0, 10)
	if err != nil {
		return nil, prefix(field, err)
	}
	ep.AuthMethod = endpoint.AuthMethod(auth)
	if ep.Username, err = requiredString(v, "username", 1, endpoint.MaxUsername); err != nil {
		return nil, prefix(field, err)
	}
	if ep.CertSHA256, err = optionalString(v, "certSha256", 95); err != nil {
		return nil, prefix(field, err)
	}
	if verr := ep.Validate(); verr != nil {
		return nil, invalid(field, fmt.Sprintf("member %q: %v", field, verr))
	}
	return &ep, nil
}

func prefix(parent string, err *Error) *Error {
	err.Field = parent + "." + err.Field
	err.Message = strings.Replace(err.Message, `"`+strings.TrimPrefix(err.Field, parent+".")+`"`, `"`+err.Field+`"`, 1)
	return err
}
