package provider

import "sort"

// backends lists every back-end; adding one is one file plus one line here.
var backends = map[string]Backend{
	"ad":          ad{},
	"aruba":       aruba{},
	"cpanel":      cpanel{},
	"directadmin": directadmin{},
	"kpasswd":     kpasswd{},
	"ldap":        ldapBackend{},
	"poppassd":    poppassd{},
	"roundcube":   roundcube{},
	"sandbox":     sandbox{},
	"zimbra":      zimbra{},
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
