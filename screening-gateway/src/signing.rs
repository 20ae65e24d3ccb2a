//! The hub's signing key and a gateway's trusted hub keys, read from PEM files, and the
//! `screening-gateway signing-key` command that makes them. What is signed and how it is checked
//! is `screening_core::signing`.
//!
//! Rotation: generate a new key, add its public file to every gateway's `[signatures]
//! hub_key_files` beside the old one, switch the hub's `--signing-key` to the new key, and once no
//! message signed by the old key is in flight (signatures expire after an hour), remove the old
//! public file from the gateways. Removing a key from a gateway is revocation: from then on it
//! refuses what that key signed.

use std::io::Write;
use std::path::{Path, PathBuf};

use screening_core::signing::{HubPublicKey, HubSigningKey};

/// The hub's `--signing-key` (`SCREENING_SIGNING_KEY_FILE`), for any front end that mounts the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SigningKeyFile {
    /// The hub's Ed25519 private key (PKCS#8 PEM, readable by its owner only), which signs every
    /// order handed to a gateway. Without it orders go unsigned. Make one with `screening-gateway
    /// signing-key generate`.
    #[arg(long = "signing-key", env = "SCREENING_SIGNING_KEY_FILE")]
    pub path: Option<PathBuf>,
}

impl SigningKeyFile {
    /// The key, when a file is named; a file that cannot be used is an error, never "unsigned".
    pub fn load(&self) -> Result<Option<HubSigningKey>, String> {
        self.path.as_deref().map(read_signing_key).transpose()
    }
}

/// Reads the hub's private key. Refused when others may read the file (as ssh does).
pub fn read_signing_key(path: &Path) -> Result<HubSigningKey, String> {
    let what = format!("signing key {}", path.display());
    let text = read_private_file(path, &what)?;
    HubSigningKey::from_pem(&text).map_err(|e| format!("{what}: {e}"))
}

/// Reads a file holding a secret (a private key, a token), refused when its group or others may
/// read it, as ssh refuses a private key: a secret others can read is no longer one. `what` names
/// it in errors.
pub fn read_private_file(path: &Path, what: &str) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("{what}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what}: readable by others (mode {mode:o}); run chmod 600 on it"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    std::fs::read_to_string(path).map_err(|e| format!("{what}: {e}"))
}

/// Reads the hub's public keys a gateway trusts, one PEM file each.
pub fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<HubPublicKey>, String> {
    paths
        .iter()
        .map(|path| {
            let shown = path.display();
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("hub key {shown}: {e}"))?;
            HubPublicKey::from_pem(&text).map_err(|e| format!("hub key {shown}: {e}"))
        })
        .collect()
}

/// A new signing key from the operating system's random source.
pub fn generate_signing_key() -> HubSigningKey {
    HubSigningKey::from_seed(crate::random::bytes::<32>())
}

/// `screening-gateway signing-key`: make or inspect the hub's order-signing keys.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningKeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SigningKeyCommand,
}

/// The `signing-key` verbs.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SigningKeyCommand {
    /// Write a new private key to FILE (mode 600, never overwriting) and its public key to
    /// FILE.pub, the file each gateway lists in `[signatures] hub_key_files`.
    Generate {
        /// The private key's file, e.g. /etc/screening/hub-2026-12.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key (PEM) and key id of a private key file.
    Public {
        /// The private key's file.
        #[arg(long)]
        key: PathBuf,
    },
}

impl SigningKeyArgs {
    /// Carries out the verb, printing what a person needs next.
    pub fn run(&self) -> Result<(), String> {
        match &self.command {
            SigningKeyCommand::Generate { out } => {
                let key = generate_signing_key();
                let public_path = PathBuf::from(format!("{}.pub", out.display()));
                write_new(out, key.to_pem().as_bytes(), 0o600)?;
                write_new(&public_path, key.public_key().to_pem().as_bytes(), 0o644)?;
                println!("key id {}", key.id());
                println!(
                    "private key: {} (give it to the hub: --signing-key)",
                    out.display()
                );
                println!(
                    "public key:  {} (list it in each gateway's [signatures] hub_key_files)",
                    public_path.display()
                );
                Ok(())
            }
            SigningKeyCommand::Public { key } => {
                let key = read_signing_key(key)?;
                println!("# key id {}", key.id());
                print!("{}", key.public_key().to_pem());
                Ok(())
            }
        }
    }
}

/// Creates `path` with `mode`; an existing file is an error (a key is never overwritten).
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_and_its_public_file_matches() {
        let folder = tempfile::tempdir().unwrap();
        let out = folder.path().join("hub.pem");
        SigningKeyArgs {
            command: SigningKeyCommand::Generate { out: out.clone() },
        }
        .run()
        .unwrap();
        let key = read_signing_key(&out).unwrap();
        let public = read_public_keys(&[folder.path().join("hub.pem.pub")]).unwrap();
        assert_eq!(public, vec![key.public_key()]);
        // Never overwritten.
        let again = SigningKeyArgs {
            command: SigningKeyCommand::Generate { out: out.clone() },
        }
        .run();
        assert!(again.unwrap_err().contains("exists"));
        assert_eq!(read_signing_key(&out).unwrap().id(), key.id());
    }

    #[cfg(unix)]
    #[test]
    fn a_private_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("hub.pem");
        std::fs::write(&path, generate_signing_key().to_pem()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_signing_key(&path).unwrap_err();
        assert!(error.contains("readable by others (mode 644)"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_signing_key(&path).is_ok());
    }

    #[test]
    fn a_public_key_where_a_private_one_belongs_is_named() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("hub.pem");
        write_new(
            &path,
            generate_signing_key().public_key().to_pem().as_bytes(),
            0o600,
        )
        .unwrap();
        let error = read_signing_key(&path).unwrap_err();
        assert!(error.contains("not an Ed25519 private key"), "{error}");
    }
}
