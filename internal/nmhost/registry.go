package nmhost

// Registry is the part of the Windows registry credsync touches: the
// default value of one key. SystemRegistry returns the real one on Windows;
// tests use a fake.
type Registry interface {
	// ReadDefault returns the key's default value. A missing key or value
	// is an error that matches fs.ErrNotExist.
	ReadDefault(k RegistryKey) (string, error)
	// WriteDefault creates the key if needed and sets its default value to
	// a string (REG_SZ).
	WriteDefault(k RegistryKey, value string) error
	// DeleteKey deletes the key (which has no sub-keys). A missing key is
	// an error that matches fs.ErrNotExist.
	DeleteKey(k RegistryKey) error
}
