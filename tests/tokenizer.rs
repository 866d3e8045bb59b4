//! The CLIP tokenizer against openai/CLIP on every case of `tokenizer_cases.json`. Needs the BPE
//! vocabulary: `FACECAST_CLIP_VOCAB` (e.g. the file `facecast weights install clip-bpe-vocab` put in the
//! store), or `models/clip/bpe_simple_vocab_16e6.txt.gz` from `scripts/fetch-clip-vocab.sh`. A missing
//! vocabulary or fixture is a failure, in every environment.

mod common;

use std::path::PathBuf;

use facecast::nets::clip_text::{EOT, SOT, Truncate};
use facecast::parity::clip_text::{VOCAB_DEFAULT, VOCAB_ENV, tokenizer_cases, vocab_path};
use facecast::weights::models::load_clip_tokenizer;

/// The vocabulary (setup installs it); a missing one fails the test with what to install.
fn vocab() -> PathBuf {
    vocab_path().unwrap_or_else(|| {
        panic!("no CLIP vocabulary: run `bash scripts/fetch-clip-vocab.sh` (puts {VOCAB_DEFAULT}) or set {VOCAB_ENV}")
    })
}

fn cases_file() -> PathBuf {
    common::fixture_dir("clip_text").join("tokenizer_cases.json")
}

#[test]
fn every_reference_case_matches() {
    let (vocab, cases) = (vocab(), cases_file());
    let results = tokenizer_cases(&cases, &vocab).unwrap_or_else(|e| panic!("{e}"));
    assert!(results.len() >= 40, "only {} cases", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.note.clone().unwrap_or_default()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases differ:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
}

#[test]
fn vocabulary_and_context_rules() {
    let vocab = vocab();
    let tok = load_clip_tokenizer(&vocab).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tok.vocab_size(), 49408);
    // "!" is byte symbol 0, and also the padding id.
    assert_eq!(tok.encode("!"), vec![256]);
    let row = tok
        .tokenize("face", 77, Truncate::No)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(row.len(), 77);
    assert_eq!((row[0], row[2], row[3]), (SOT, EOT, 0));
    let long = "word ".repeat(100);
    assert!(tok.tokenize(&long, 77, Truncate::No).is_err());
    let cut = tok
        .tokenize(&long, 77, Truncate::Yes)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((cut.len(), cut[76]), (77, EOT));
}

#[test]
fn a_broken_vocabulary_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("vocab.txt");
    std::fs::write(&path, "#version: 0.2\na b\n").unwrap_or_else(|e| panic!("{e}"));
    let err = load_clip_tokenizer(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("vocab.txt") && err.contains("merges"), "{err}");
}
