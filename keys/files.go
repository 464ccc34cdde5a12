package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// outFile is one file Generate writes.
type outFile struct {
	path string
	data []byte
	perm fs.FileMode
}

// writeAll writes every file with its mode set at creation time. It refuses
// to replace any existing file: all paths are checked before anything is
// written, and each file is created with O_EXCL. On failure the files it
// created are removed again. It returns the paths written.
func writeAll(files []outFile) ([]string, error) {
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return nil, fmt.Errorf("refusing to overwrite existing file %s", f.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking %s: %w", f.path, err)
		}
	}
	var written []string
	for _, f := range files {
		if err := writeNew(f); err != nil {
			for _, p := range written {
				_ = os.Remove(p)
			}
			return nil, err
		}
		written = append(written, f.path)
	}
	return written, nil
}

// writeNew creates f.path exclusively with mode f.perm and writes f.data.
func writeNew(f outFile) error {
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("refusing to overwrite existing file %s", f.path)
		}
		return fmt.Errorf("creating %s: %w", f.path, err)
	}
	_, werr := fh.Write(f.data)
	cerr := fh.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(f.path)
		return fmt.Errorf("writing %s: %w", f.path, werr)
	}
	return nil
}
