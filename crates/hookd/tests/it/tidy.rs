//! Code-base rules that a reviewer would otherwise repeat: every source file opens
//! with a `//!` line saying what it owns.

use std::path::{Path, PathBuf};

fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates dir");
    let mut sources = Vec::new();
    for krate in std::fs::read_dir(crates).expect("crates dir") {
        let src = krate.expect("entry").path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut sources);
        }
    }
    assert!(sources.len() > 20, "found the sources: {}", sources.len());
    let undocumented: Vec<_> = sources
        .iter()
        .filter(|path| !std::fs::read_to_string(path).expect("readable").starts_with("//!"))
        .collect();
    assert!(undocumented.is_empty(), "files without a //! module doc: {undocumented:?}");
}

#[test]
fn readme_lists_every_environment_variable_serve_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let (_, listed) = readme.split_once("<!-- env:serve -->").expect("the README's env list marker");
    let listed = listed.split("\n\n").next().unwrap_or_default();
    let mut in_readme: Vec<String> = listed
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|word| word.starts_with("HOOKD_"))
        .map(str::to_owned)
        .collect();
    in_readme.sort();
    let cli = <hookd::Cli as clap::CommandFactory>::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let mut in_cli: Vec<String> = serve
        .get_arguments()
        .filter_map(|argument| argument.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    in_cli.sort();
    assert_eq!(in_readme, in_cli, "README.md's Configuration list and `hookd serve`'s variables");
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Spelled in two parts so this file does not match itself.
    let sibling = ["..", "/shared"].concat();
    let tracked = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git ls-files");
    let outside: Vec<String> = String::from_utf8_lossy(&tracked.stdout)
        .split('\0')
        .filter(|file| !file.is_empty() && !file.ends_with(".lock"))
        .filter(|file| std::fs::read_to_string(root.join(file)).is_ok_and(|text| text.contains(&sibling)))
        .map(str::to_owned)
        .collect();
    assert!(outside.is_empty(), "files that point outside the repository: {outside:?}");
}

/// The hookd crates a crate's `[dependencies]` name (not its dev-dependencies).
fn hookd_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
        if in_dependencies && name.starts_with("hookd") {
            found.push(name.to_owned());
        }
    }
    found.sort();
    found
}

#[test]
fn the_architecture_maps_crate_dependencies_as_they_are() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let (_, table) = map.split_once("<!-- crate-dependencies -->").expect("the dependency table marker");
    let rows: Vec<(String, Vec<String>)> = table
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let krate = cells[1].trim_matches('`').to_owned();
            let mut deps: Vec<String> =
                cells[2].split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned).collect();
            deps.sort();
            (krate, deps)
        })
        .collect();
    let crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .expect("crates")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rows.len(), crates.len(), "one row per crate: {rows:?}");
    for (krate, deps) in rows {
        let manifest = std::fs::read_to_string(root.join("crates").join(&krate).join("Cargo.toml"))
            .unwrap_or_else(|_| panic!("a crate named {krate}"));
        assert_eq!(deps, hookd_dependencies(&manifest), "{krate}'s dependencies in ARCHITECTURE.md");
    }
}
