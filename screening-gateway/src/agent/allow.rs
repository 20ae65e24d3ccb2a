//! What the agent may touch, decided by the hospital in the agent's own configuration, not by the
//! hub: destinations are named centrally, but a leaked credential or a compromised hub account
//! must not make a hospital machine post patient data anywhere its network reaches, or write it
//! anywhere on its disk. By default only `log:` and the worklist (`mwl:`) are allowed.

use std::path::{Component, Path, PathBuf};

use reqwest::Url;
use screening_core::gateway::Destination;

/// The refusal's words; the reason follows in brackets.
pub const NOT_ALLOWED: &str = "forward to destination: not allowed by this gateway's configuration";

/// The destinations this agent may forward to, beyond `log:` and `mwl:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// `http(s)` destinations must fall under one of these: the same scheme, host and port, and a
    /// path at or below the prefix's (whole segments: `/fhir` allows `/fhir/x`, not `/fhirx`).
    pub url_prefixes: Vec<Url>,
    /// `file:` destinations must be folders inside this one (absolute).
    pub spool_dir: Option<PathBuf>,
}

impl AllowList {
    /// Parses the prefixes; each must be an absolute http(s) URL without a user name or password.
    pub fn new(prefixes: &[String], spool_dir: Option<PathBuf>) -> Result<Self, String> {
        let url_prefixes = prefixes
            .iter()
            .map(|prefix| {
                let url = Url::parse(prefix.trim())
                    .map_err(|e| format!("allowed destination {prefix:?}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(format!(
                        "allowed destination {prefix:?}: an http:// or https:// URL with a host"
                    ));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(format!(
                        "allowed destination {prefix:?}: no user name or password in the URL"
                    ));
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dir) = &spool_dir {
            if !dir.is_absolute() || has_parent_steps(dir) {
                return Err(format!(
                    "spool directory {}: an absolute path without ..",
                    dir.display()
                ));
            }
        }
        Ok(Self {
            url_prefixes,
            spool_dir,
        })
    }

    /// Whether `destination` may be used; the refusal says why. `file:` folders are checked by
    /// their words here, and again on disk when written ([`AllowList::check_on_disk`]).
    pub fn check(&self, destination: &Destination) -> Result<(), String> {
        let refused = |why: String| Err(format!("{NOT_ALLOWED} ({why})"));
        match destination.scheme().as_str() {
            "log" | "mwl" => Ok(()),
            "http" | "https" => {
                let Ok(url) = Url::parse(destination.as_str()) else {
                    return refused("not a URL".into());
                };
                if !url.username().is_empty() || url.password().is_some() {
                    return refused("a user name or password in the URL".into());
                }
                if self.url_prefixes.iter().any(|prefix| under(&url, prefix)) {
                    Ok(())
                } else {
                    refused(format!("{} is not under an allowed prefix", origin(&url)))
                }
            }
            "file" => {
                let Some(spool) = &self.spool_dir else {
                    return refused(
                        "no spool directory is configured for file: destinations".into(),
                    );
                };
                let folder = folder_of(destination);
                if !folder.is_absolute() || has_parent_steps(&folder) || !folder.starts_with(spool)
                {
                    return refused(format!(
                        "{} is not inside the spool directory",
                        folder.display()
                    ));
                }
                Ok(())
            }
            other => refused(format!("scheme {other:?}")),
        }
    }

    /// After the folder exists: it must still be inside the spool directory once links are
    /// followed, so a symbolic link cannot lead a write elsewhere.
    pub fn check_on_disk(&self, folder: &Path) -> Result<(), String> {
        let Some(spool) = &self.spool_dir else {
            return Err(format!("{NOT_ALLOWED} (no spool directory)"));
        };
        let real = |path: &Path| {
            std::fs::canonicalize(path)
                .map_err(|e| format!("forward to destination: resolving {}: {e}", path.display()))
        };
        if real(folder)?.starts_with(real(spool)?) {
            Ok(())
        } else {
            Err(format!(
                "{NOT_ALLOWED} ({} leads outside the spool directory)",
                folder.display()
            ))
        }
    }
}

/// The folder of a `file:///folder` destination.
pub fn folder_of(destination: &Destination) -> PathBuf {
    let text = destination.as_str();
    let rest = text.split_once(':').map_or(text, |(_, rest)| rest);
    PathBuf::from(rest.trim_start_matches("//"))
}

fn has_parent_steps(path: &Path) -> bool {
    path.components().any(|c| matches!(c, Component::ParentDir))
}

/// The URL's scheme, host and port, for a refusal (no path: it may carry identifiers).
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether `url` is under `prefix`: same scheme, host and port, and a path at or below it.
pub(crate) fn under(url: &Url, prefix: &Url) -> bool {
    if url.scheme() != prefix.scheme()
        || url.host() != prefix.host()
        || url.port_or_known_default() != prefix.port_or_known_default()
    {
        return false;
    }
    let base = prefix.path().trim_end_matches('/');
    let path = url.path();
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(uri: &str) -> Destination {
        Destination::parse(uri).unwrap()
    }

    fn list() -> AllowList {
        AllowList::new(
            &["https://ris.example.nhs.uk/fhir".into()],
            Some(PathBuf::from("/var/spool/screening")),
        )
        .unwrap()
    }

    #[test]
    fn by_default_only_the_log_and_the_worklist_are_allowed() {
        let nothing = AllowList::default();
        assert!(nothing.check(&destination("log:")).is_ok());
        assert!(nothing.check(&destination("mwl:MAMMO1")).is_ok());
        for uri in ["https://ris.example.nhs.uk/fhir", "file:///tmp/orders"] {
            let refusal = nothing.check(&destination(uri)).unwrap_err();
            assert!(refusal.starts_with(NOT_ALLOWED), "{refusal}");
        }
    }

    #[test]
    fn a_url_must_be_under_a_prefix_by_whole_segments_on_the_same_origin() {
        let list = list();
        for allowed in [
            "https://ris.example.nhs.uk/fhir",
            "https://ris.example.nhs.uk/fhir/ServiceRequest",
            "https://ris.example.nhs.uk:443/fhir/x?y=1",
            "https://RIS.example.nhs.uk/fhir/x",
        ] {
            assert!(list.check(&destination(allowed)).is_ok(), "{allowed}");
        }
        for refused in [
            "https://ris.example.nhs.uk/fhirx",
            "https://ris.example.nhs.uk/other",
            "http://ris.example.nhs.uk/fhir",
            "https://ris.example.nhs.uk:8443/fhir",
            "https://ris.example.nhs.uk.evil.example/fhir",
            "https://ris.example.nhs.uk@evil.example/fhir",
            "https://ris.example.nhs.uk/fhir/../admin",
        ] {
            let refusal = list.check(&destination(refused)).unwrap_err();
            assert!(refusal.starts_with(NOT_ALLOWED), "{refused}: {refusal}");
        }
    }

    #[test]
    fn a_file_folder_must_be_inside_the_spool_without_going_up() {
        let list = list();
        assert!(list
            .check(&destination("file:///var/spool/screening/leeds"))
            .is_ok());
        for refused in [
            "file:///var/spool/screening/../../etc",
            "file:///var/spool/screening-other",
            "file:///etc/cron.d",
        ] {
            assert!(list.check(&destination(refused)).is_err(), "{refused}");
        }
        assert!(AllowList::default()
            .check(&destination("file:///var/spool/screening"))
            .is_err());
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        assert!(AllowList::new(&["ftp://x/".into()], None)
            .unwrap_err()
            .contains("http:// or https://"));
        assert!(AllowList::new(&["https://user:pw@x/".into()], None)
            .unwrap_err()
            .contains("no user name"));
        assert!(AllowList::new(&[], Some(PathBuf::from("spool")))
            .unwrap_err()
            .contains("absolute"));
    }
}
