//go:build windows

package nmhost

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows/registry"
)

// SystemRegistry returns the Windows registry.
func SystemRegistry() Registry { return winRegistry{} }

type winRegistry struct{}

func rootKey(k RegistryKey) (registry.Key, error) {
	switch k.Root {
	case "HKCU":
		return registry.CURRENT_USER, nil
	case "HKLM":
		return registry.LOCAL_MACHINE, nil
	}
	return 0, fmt.Errorf("unknown registry root %q", k.Root)
}

// notExist makes registry.ErrNotExist (ERROR_FILE_NOT_FOUND) match
// fs.ErrNotExist explicitly.
func notExist(k RegistryKey, err error) error {
	if errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf("%s: %w", k, fs.ErrNotExist)
	}
	return fmt.Errorf("%s: %w", k, err)
}

func (winRegistry) ReadDefault(k RegistryKey) (string, error) {
	root, err := rootKey(k)
	if err != nil {
		return "", err
	}
	access := uint32(registry.QUERY_VALUE | registry.WOW64_64KEY)
	if k.View32 {
		access = registry.QUERY_VALUE | registry.WOW64_32KEY
	}
	key, err := registry.OpenKey(root, k.Path, access)
	if err != nil {
		return "", notExist(k, err)
	}
	defer key.Close()
	v, _, err := key.GetStringValue("")
	if err != nil {
		return "", notExist(k, err)
	}
	return v, nil
}

func (winRegistry) WriteDefault(k RegistryKey, value string) error {
	root, err := rootKey(k)
	if err != nil {
		return err
	}
	key, _, err := registry.CreateKey(root, k.Path, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	defer key.Close()
	if err := key.SetStringValue("", value); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

func (winRegistry) DeleteKey(k RegistryKey) error {
	root, err := rootKey(k)
	if err != nil {
		return err
	}
	if err := registry.DeleteKey(root, k.Path); err != nil {
		return notExist(k, err)
	}
	return nil
}
