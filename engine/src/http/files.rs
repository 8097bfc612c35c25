//! Static files the HTTP edge serves from a directory of the operator's (`[http] static_dir`,
//! at `static_path`): an application's pages beside the broker, as the chat sample's. The
//! directory is read once, at start, into memory: a request never touches the file system, so
//! no path a client sends can reach outside it, and the shard never blocks on a disk. Bounded:
//! at most `MAX_FILES` files, `MAX_BYTES` in all, `MAX_DEPTH` directories deep; symbolic links
//! and other special files are skipped.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

/// The most files a directory may give.
const MAX_FILES: usize = 1_000;
/// The most bytes they may hold together.
const MAX_BYTES: u64 = 32 << 20;
/// How deep its subdirectories may go.
const MAX_DEPTH: usize = 8;

/// The files, by the path they are served at, with their content types.
#[derive(Debug, Default)]
pub(crate) struct StaticFiles {
    /// Where they are served: `/app` serves `index.html` at `/app/` and `a/b.js` at `/app/a/b.js`.
    at: String,
    files: HashMap<String, (Bytes, &'static str)>,
}

/// What a request for a path of the files' prefix gets.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// The file's bytes and content type.
    File(&'a Bytes, &'static str),
    /// The prefix without its slash: go to the directory.
    Directory(String),
}

impl StaticFiles {
    /// Reads every file under `dir`, to be served at `at`.
    ///
    /// # Errors
    /// What could not be read, or which bound the directory passes.
    pub(crate) fn load(dir: &Path, at: &str) -> Result<StaticFiles, String> {
        let mut files = StaticFiles {
            at: at.trim_end_matches('/').to_owned(),
            files: HashMap::new(),
        };
        let mut bytes = 0;
        files.read_dir(dir, "", 0, &mut bytes)?;
        Ok(files)
    }

    fn read_dir(
        &mut self,
        dir: &Path,
        under: &str,
        depth: usize,
        bytes: &mut u64,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{}: more than {MAX_DEPTH} directories deep",
                dir.display()
            ));
        }
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let served = format!("{under}/{name}");
            if kind.is_dir() {
                self.read_dir(&path, &served, depth + 1, bytes)?;
            } else if kind.is_file() {
                let size = entry
                    .metadata()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                *bytes += size.len();
                if *bytes > MAX_BYTES || self.files.len() >= MAX_FILES {
                    return Err(format!(
                        "{}: over {MAX_FILES} files or {MAX_BYTES} bytes",
                        dir.display()
                    ));
                }
                let body = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                self.files
                    .insert(served, (Bytes::from(body), content_type(&name)));
            }
        }
        Ok(())
    }

    /// What `path` gets, when it is under the files' prefix.
    pub(crate) fn find(&self, path: &str) -> Option<Found<'_>> {
        let rest = path.strip_prefix(self.at.as_str())?;
        if rest.is_empty() {
            return Some(Found::Directory(format!("{}/", self.at)));
        }
        if !rest.starts_with('/') {
            return None;
        }
        let key = if rest.ends_with('/') {
            format!("{rest}index.html")
        } else {
            rest.to_owned()
        };
        let (body, kind) = self.files.get(&key)?;
        Some(Found::File(body, kind))
    }
}

/// The content type of a file named `name`, by its extension.
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests may panic
mod tests {
    use super::*;

    fn served(files: &StaticFiles, path: &str) -> Option<(String, &'static str)> {
        match files.find(path)? {
            Found::File(body, kind) => Some((String::from_utf8(body.to_vec()).unwrap(), kind)),
            Found::Directory(to) => Some((format!("-> {to}"), "")),
        }
    }

    #[test]
    fn a_directory_is_served_under_its_prefix_and_nothing_outside_it() {
        let dir = std::env::temp_dir().join(format!("sb-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("js")).unwrap();
        std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("js/app.js"), "go()").unwrap();
        let files = StaticFiles::load(&dir, "/app/").unwrap();
        assert_eq!(
            served(&files, "/app/"),
            Some(("<p>hi</p>".into(), "text/html; charset=utf-8"))
        );
        assert_eq!(
            served(&files, "/app/js/app.js"),
            Some(("go()".into(), "text/javascript; charset=utf-8"))
        );
        assert_eq!(served(&files, "/app"), Some(("-> /app/".into(), "")));
        assert_eq!(served(&files, "/app/../Cargo.toml"), None);
        assert_eq!(served(&files, "/app/js/"), None);
        assert_eq!(served(&files, "/apple"), None);
        assert_eq!(served(&files, "/other/index.html"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let error = StaticFiles::load(Path::new("/no/such/dir"), "/app").unwrap_err();
        assert!(error.contains("/no/such/dir"), "{error}");
    }
}
