//! Records from files, as the CLI and the bindings import them: a text record per line of a
//! UTF-8 file, a bytes record per file of a directory.

use std::path::{Path, PathBuf};

use super::Record;
use crate::{Error, Result};

/// `path`'s bytes; an I/O error names the path (and keeps its kind, e.g. not found).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| in_path(path, e))
}

fn in_path(path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// `bytes` as UTF-8 text, or [`Error::Malformed`] naming `what` and the line of the first
/// invalid byte.
pub fn utf8(what: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::Malformed {
            what: "text",
            reason: format!("{what} is not UTF-8 (line {line}, byte {valid})"),
        }
    })
}

/// A text record per line of `text` (line ends `\n` or `\r\n` dropped).
pub fn lines(text: &str) -> Vec<Record> {
    text.lines().map(|l| Record::Text(l.to_string())).collect()
}

/// A text record per line of the UTF-8 file at `path`.
pub fn lines_of_file(path: &Path) -> Result<Vec<Record>> {
    Ok(lines(&utf8(&path.display().to_string(), read_file(path)?)?))
}

/// A bytes record per regular file directly in `dir`, in name order (subdirectories skipped).
pub fn files_in(dir: &Path) -> Result<Vec<Record>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| in_path(dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| in_path(dir, e))?;
    paths.retain(|p| p.is_file());
    paths.sort();
    paths
        .iter()
        .map(|p| read_file(p).map(Record::Bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_drop_line_ends_and_invalid_utf8_names_the_line() {
        assert_eq!(
            lines("a\r\nb\n\nc"),
            ["a", "b", "", "c"].map(|s| Record::Text(s.into()))
        );
        let err = utf8("notes.txt", b"ok\nfine\n\xff".to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .contains("notes.txt is not UTF-8 (line 3, byte 8)"),
            "{err}"
        );
    }

    #[test]
    fn files_in_a_directory_in_name_order_and_a_missing_one_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), b"2").unwrap();
        std::fs::write(dir.path().join("a"), b"1").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(
            files_in(dir.path()).unwrap(),
            vec![Record::Bytes(b"1".to_vec()), Record::Bytes(b"2".to_vec())]
        );
        let missing = dir.path().join("missing");
        let err = files_in(&missing).unwrap_err();
        assert_eq!(err.kind(), oai_core::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
        let err = lines_of_file(&missing).unwrap_err();
        assert_eq!(err.kind(), oai_core::ErrorKind::NotFound);
    }
}
