//! Finding and reading the khorus configuration file, one TOML section per stage.
//!
//! Lookup: an explicit `--config FILE`, else `$XDG_CONFIG_HOME/khorus/khorus.toml` (or
//! `~/.config/khorus/khorus.toml`), else `/etc/khorus/khorus.toml`; none found means defaults.
//! A stage reads only its own section (`[collector]`, `[composer]`, …), which it deserializes
//! with `deny_unknown_fields`, so a typo is an error naming the key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why the configuration could not be read.
///
/// Like every khorus error, a message names what failed and leaves the cause to
/// [`std::error::Error::source`]: binaries print the chain (`{:#}`), so a cause written into the
/// message too would be printed twice.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file or the stage's section is not valid.
    #[error("invalid configuration in {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (TOML's line/column, or the key path).
        message: String,
    },
}

/// The configuration file to use, if any.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("khorus/khorus.toml"));
    user.into_iter()
        .chain([PathBuf::from("/etc/khorus/khorus.toml")])
        .find(|p| p.is_file())
}

/// Reads `section` of the configuration file (defaults when there is no file or no section).
/// Returns the settings and the file they came from.
pub fn load<T: DeserializeOwned + Default>(
    explicit: Option<&Path>,
    section: &str,
) -> Result<(T, Option<PathBuf>), SettingsError> {
    let Some(path) = find(explicit) else {
        return Ok((T::default(), None));
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Read {
        path: path.clone(),
        source,
    })?;
    let value = parse_section(&text, section).map_err(|message| SettingsError::Invalid {
        path: path.clone(),
        message,
    })?;
    Ok((value, Some(path)))
}

/// Parses `section` out of TOML text.
pub fn parse_section<T: DeserializeOwned + Default>(
    text: &str,
    section: &str,
) -> Result<T, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    match table.remove(section) {
        None => Ok(T::default()),
        Some(v) => T::deserialize(v).map_err(|e| format!("[{section}] {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_read_error_leaves_the_os_error_to_its_source() {
        let e = load::<toml::Table>(Some(Path::new("/nonexistent/khorus.toml")), "x")
            .expect_err("no such file");
        // The chain printer (`{:#}`) adds the cause once; the message must not repeat it.
        assert_eq!(e.to_string(), "failed to read /nonexistent/khorus.toml");
        let cause = e.source().expect("the I/O error").to_string();
        assert_eq!(cause, "No such file or directory (os error 2)");
    }
}
