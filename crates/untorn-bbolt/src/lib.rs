//! bbolt file format support (in progress).
