//go:build unix && !linux

package journal

// Removed implements File where there is no statx.
func (f osFile) Removed() (bool, error) { return fstatRemoved(f.File) }
