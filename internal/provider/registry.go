package provider

import "sort"

// backends lists every back-end; adding one is one file plus one line here.
// Release builds hold exactly these: the test sandbox's back-end is added by
// Register, only in demo and test builds.
var backends = map[string]Backend{
	"ad":          ad{},
	"aruba":       aruba{},
	"cpanel":      cpanel{},
	"directadmin": directadmin{},
	"kpasswd":     kpasswd{},
	"ldap":        ldapBackend{},
	"poppassd":    poppassd{},
	"roundcube":   roundcube{},
	"zimbra":      zimbra{},
}

// Register adds a back-end defined outside this package. Its one user is
// the sandbox back-end (internal/testkit/sandbox/backend), which registers
// itself when a demo or test build imports it: cmd/credsync does so only
// under the build tag "sandbox", tests from their own _test.go files, so a
// release binary never lists it. Call Register from an init function (the
// registry is not locked); it panics on a nameless back-end or a name taken.
func Register(b Backend) {
	name := b.Info().Name
	if name == "" {
		panic("provider: Register of a back-end without a name")
	}
	if _, taken := backends[name]; taken {
		panic("provider: back-end " + name + " registered twice")
	}
	backends[name] = b
}

// Lookup returns the back-end called name.
func Lookup(name string) (Backend, bool) {
	b, ok := backends[name]
	return b, ok
}

// All describes every back-end, sorted by name.
func All() []Info {
	infos := make([]Info, 0, len(backends))
	for _, b := range backends {
		infos = append(infos, b.Info())
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos
}
