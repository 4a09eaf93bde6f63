//! The fuzz targets' stable fallback: every file of `fuzz/corpus/<target>/`
//! goes through the target's own entry point ([`portico::fuzzing`], the
//! function its `fuzz_target!` calls), then a few deterministic mutations
//! of it, so the targets' properties hold on any machine, with no nightly
//! and no cargo-fuzz. A failure names the target and the input.
//!
//!   cargo test --test fuzz_corpus

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use portico::fuzzing::TARGETS;

/// Mutations tried per corpus file (cheap: a few thousand runs in all).
const MUTATIONS: u32 = 24;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// xorshift64: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One small libFuzzer-like edit of `seed`: flip, insert, delete,
/// duplicate a span, or cut, keeping the first (mode) byte most of the time.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 => v.insert(at, b"\r\n{}\":,0aZ\x00\xff"[rng.below(12)]),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 if !v.is_empty() => {
                let (a, b) = (rng.below(v.len()), rng.below(v.len()));
                let span = v[a.min(b)..a.max(b)].to_vec();
                v.splice(at..at, span);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn run(f: fn(&[u8]), input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| f(input))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn every_corpus_file_keeps_its_targets_properties() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for &(target, f) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target}: no seed in {}", dir.display());
        for path in files {
            let seed = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Err(msg) = run(f, &seed) {
                failures.push(format!("{target}: {name}: {msg}"));
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64);
            for i in 0..MUTATIONS {
                let m = mutate(&seed, &mut rng);
                if let Err(msg) = run(f, &m) {
                    failures.push(format!("{target}: {name} mutation {i} {m:?}: {msg}"));
                }
            }
            runs += 1 + MUTATIONS;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fuzz crate's `[[bin]]`s, the corpus directories and
/// [`portico::fuzzing::TARGETS`] name the same targets.
#[test]
fn targets_bins_and_corpus_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "portico-fuzz")
        .collect();
    bins.sort_unstable();
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort_unstable();
    let mut names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(bins, names, "fuzz/Cargo.toml [[bin]]s vs fuzzing::TARGETS");
    assert_eq!(dirs, names, "fuzz/corpus/ vs fuzzing::TARGETS");
    for n in &names {
        let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{n}.rs"))).unwrap();
        assert!(
            src.contains(&format!("portico::fuzzing::{n}(data)")),
            "fuzz_targets/{n}.rs does not call portico::fuzzing::{n}"
        );
    }
}
