package main

import (
	"os"
	"syscall"
)

// fdatasync is what the Rust side's File::sync_data does on Linux.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
