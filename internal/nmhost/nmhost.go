// Package nmhost registers credsync as a Thunderbird native-messaging host.
//
// It writes, reads and checks the host manifest (credsync.json), knows where
// Thunderbird looks for it on every supported OS (Locations), installs and
// removes it (Install, Uninstall; plus the registry value on Windows), and
// diagnoses a registration the way Thunderbird would use it (Doctor), down to
// starting the host and asking it "hello" (RunHello).
//
// Thunderbird starts the host as
//
//	credsync <manifest path> <extension id>
//
// and the host must refuse an extension ID that the manifest does not allow;
// CheckCaller does that check.
//
// Thunderbird uses Gecko's NativeManifests.sys.mjs unchanged: on Linux, macOS
// and the BSDs it tries the per-user directory, then the system directory,
// and takes the first manifest that is valid; on Windows it takes the first
// registry value it finds (HKCU, then HKLM 32-bit view, then HKLM 64-bit
// view) and uses that manifest or nothing.
package nmhost

import "strconv"

// HostName is the native-messaging host name: the manifest's "name", the
// manifest file's base name and the name the extension passes to
// runtime.connectNative. Thunderbird requires ^\w+(\.\w+)*$ (no hyphens).
const HostName = "credsync"

// ExtensionID is the ID of the credsync MailExtension, the only entry of
// allowed_extensions in the manifest credsync installs.
const ExtensionID = "credsync@credsync.org"

// manifestFile is the manifest's file name.
const manifestFile = HostName + ".json"

// Scope says for whom a registration is made.
type Scope int

const (
	// User registers for the current user only; no privileges needed.
	User Scope = iota
	// System registers for all users of the machine; needs root or an
	// administrator.
	System
)

// String returns "user" or "system".
func (s Scope) String() string {
	switch s {
	case User:
		return "user"
	case System:
		return "system"
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}
