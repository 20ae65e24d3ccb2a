//! Build tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `build-web`: the web app's browser bundle. Compiles `screening-web` for
//!   `wasm32-unknown-unknown` with the `hydrate` feature, then writes the wasm-bindgen glue into
//!   `screening-web/site/pkg/` (`screening_web.js`, `screening_web_bg.wasm`).
//! - `run [ARGS…]`: `build-web`, then runs the `screening-web` server with ARGS.
//!
//! Why not cargo-leptos: it takes ~20 minutes to install on these machines and bundles a
//! wasm-bindgen that does not match current Leptos. Here `wasm-bindgen-cli-support` is pinned `=`
//! to the `wasm-bindgen` crate's version in the workspace, so one Cargo.lock keeps them equal.

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const WASM_PROFILE: &str = "wasm-release";
/// The name Leptos' `HydrationScripts` asks for: `/pkg/{OUTPUT_NAME}.js` and `…_bg.wasm`.
const OUTPUT_NAME: &str = "screening_web";

/// Build tasks for the screening workspace.
#[derive(clap::Parser)]
#[command(name = "cargo xtask")]
enum Task {
    /// Build the web app's browser bundle (wasm and its wasm-bindgen glue).
    BuildWeb,
    /// Build the browser bundle, then run the screening-web server with the arguments given
    /// (e.g. `cargo xtask run --demo --port 8080`; `cargo xtask run --help` is screening-web's help).
    #[command(disable_help_flag = true)]
    Run {
        /// Arguments for screening-web.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() {
    let result = match <Task as clap::Parser>::parse() {
        Task::BuildWeb => build_web(),
        // `cargo xtask run -- --port 8080`: the `--` only separates cargo's arguments from ours.
        Task::Run { args } => build_web()
            .and_then(|()| run_web(args.into_iter().skip_while(|arg| arg == "--").collect())),
    };
    if let Err(error) = result {
        eprintln!("xtask: {error}");
        exit(1);
    }
}

fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the process: that names this checkout even when
    // cargo reused an xtask binary built from another checkout sharing the target directory
    // (whose compile-time path would point there).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|error| format!("{what}: could not start: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Installs the wasm target through rustup when the toolchain lacks it.
fn ensure_wasm_target() -> Result<(), String> {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .map_err(|error| format!("rustc: {error}"))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && Path::new(&libdir).exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target with rustup");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    run(rustup, "rustup target add")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn build_web() -> Result<(), String> {
    ensure_wasm_target()?;
    let mut build = cargo();
    build.args([
        "rustc",
        "--package",
        "screening-web",
        "--lib",
        "--crate-type",
        "cdylib",
        "--target",
        WASM_TARGET,
        "--profile",
        WASM_PROFILE,
        "--no-default-features",
        "--features",
        "hydrate",
    ]);
    run(build, "cargo build of the browser bundle")?;

    let wasm = target_dir()
        .join(WASM_TARGET)
        .join(WASM_PROFILE)
        .join(format!("{OUTPUT_NAME}.wasm"));
    let out_dir = workspace_root().join("screening-web/site/pkg");
    std::fs::create_dir_all(&out_dir)
        .map_err(|error| format!("create {}: {error}", out_dir.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .map_err(|error| format!("wasm-bindgen: {error}"))?
        .out_name(OUTPUT_NAME)
        .generate(&out_dir)
        .map_err(|error| format!("wasm-bindgen on {}: {error}", wasm.display()))?;
    let size = std::fs::metadata(out_dir.join(format!("{OUTPUT_NAME}_bg.wasm")))
        .map(|meta| meta.len())
        .unwrap_or_default();
    eprintln!(
        "xtask: browser bundle written to {} ({} KiB of wasm)",
        out_dir.display(),
        size / 1024
    );
    Ok(())
}

fn run_web(args: Vec<String>) -> Result<(), String> {
    let mut server = cargo();
    server.args([
        "run",
        "--package",
        "screening-web",
        "--bin",
        "screening-web",
        "--",
    ]);
    server.args(args);
    run(server, "screening-web")
}

#[cfg(test)]
mod tests {
    use super::Task;
    use clap::Parser;

    #[test]
    fn run_passes_every_argument_to_screening_web() {
        let parsed = Task::try_parse_from(["xtask", "run", "--demo", "--port", "8080", "--help"]);
        let Ok(Task::Run { args }) = parsed else {
            panic!("run expected");
        };
        assert_eq!(args, ["--demo", "--port", "8080", "--help"]);
        let Ok(Task::Run { args }) = Task::try_parse_from(["xtask", "run", "--", "--demo"]) else {
            panic!("run expected");
        };
        assert_eq!(args, ["--demo"]);
    }
}
