//! CLIP text tower parity: both weight files (plain state dict and TorchScript archive with fp16
//! tensors) through the checkpoint reader, every recorded activation, and every case of
//! `tokenizer_cases.json` (which needs the BPE vocabulary: without it the fixture fails).

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError, Tolerance};
use crate::nets::clip_text::{self, ClipTextConfig, TextTrace, Truncate, eot_positions, l2_normalize};
use crate::weights::read_checkpoint;

/// Environment variable naming `bpe_simple_vocab_16e6.txt.gz` for tokenizer checks.
pub const VOCAB_ENV: &str = "FACECAST_CLIP_VOCAB";
/// Where `scripts/fetch-clip-vocab.sh` puts the vocabulary, relative to the repository root.
pub const VOCAB_DEFAULT: &str = "models/clip/bpe_simple_vocab_16e6.txt.gz";

/// The vocabulary named by [`VOCAB_ENV`], else [`VOCAB_DEFAULT`] (relative to the working
/// directory) if it exists.
pub fn vocab_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(VOCAB_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from(VOCAB_DEFAULT);
    default.exists().then_some(default)
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let config = ClipTextConfig::from_json(fx.config()).map_err(|e| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("config ({e})"),
    })?;
    let tokens = token_rows(fx)?;
    let mut results = Vec::new();

    let eot: Vec<f32> = eot_positions(&tokens).iter().map(|&p| p as f32).collect();
    let exact = Tolerance { abs: 0.0, rel: 0.0 };
    results.push(fx.compare_values("input.eot_index", &eot, &[eot.len()], exact));

    for file in ["weights.pth", "weights_torchscript.pt"] {
        let path = fx.path(file);
        if !path.exists() {
            continue;
        }
        let state = read_checkpoint(&path)?.flatten_tensors();
        let encoder = clip_text::from_state_dict(&state, &path, Some(&config), device)?;
        let mut trace = TextTrace::default();
        let features = encoder.forward(&tokens, device, Some(&mut trace));
        let mut cases = Vec::new();
        let mut push3 = |name: &str, t: Option<burn::Tensor<3>>| {
            cases.push(match t {
                Some(t) => fx.compare(name, t),
                None => CaseResult::fail(name, "not recorded"),
            })
        };
        push3("inter.token_embedding", trace.token_embedding);
        push3("inter.embed_plus_pos", trace.embed_plus_pos);
        push3("inter.resblocks.0.ln_1", trace.first_ln_1);
        push3("inter.resblocks.0.attn", trace.first_attn);
        for (i, block) in trace.resblocks.into_iter().enumerate() {
            let name = format!("inter.resblocks.{i}");
            if fx.io.get(&name).is_some() {
                push3(&name, Some(block));
            }
        }
        push3("inter.ln_final", trace.ln_final);
        cases.push(match trace.eot_hidden {
            Some(t) => fx.compare("inter.eot_hidden", t),
            None => CaseResult::fail("inter.eot_hidden", "not recorded"),
        });
        cases.push(fx.compare("output.text_features", features.clone()));
        cases.push(fx.compare("output.text_features_normalized", l2_normalize(features)));
        for mut case in cases {
            case.name = format!("{file}: {}", case.name);
            results.push(case);
        }
    }

    // Without the vocabulary the tokenizer cases cannot run; dropping them would let the fixture
    // pass on half its cases, so their absence is a failure that says what to install.
    match vocab_path().or_else(installed_vocab) {
        Some(vocab) => results.extend(tokenizer_cases(&fx.path("tokenizer_cases.json"), &vocab)?),
        None => results.push(CaseResult::fail(
            "tokenizer_cases.json",
            format!(
                "no CLIP vocabulary, so the tokenizer cases cannot run: install it with \
                 `bash scripts/fetch-clip-vocab.sh` (puts {VOCAB_DEFAULT}) or \
                 `facecast weights install clip-bpe-vocab`, or set {VOCAB_ENV} to the file"
            ),
        )),
    }
    Ok(results)
}

/// The vocabulary in the weights store (`facecast weights install clip-bpe-vocab`), if any.
fn installed_vocab() -> Option<PathBuf> {
    let store = crate::weights::store::WeightsStore::open(None).ok()?;
    let paths = store.require(crate::weights::models::CLIP_VOCAB_ID).ok()?;
    paths.into_iter().next()
}

fn token_rows(fx: &Fixture) -> Result<Vec<Vec<u32>>, ParityError> {
    let raw = fx.raw("input.tokens")?;
    let width = raw.shape.last().copied().unwrap_or(0).max(1);
    Ok(raw
        .to_f32()
        .chunks(width)
        .map(|row| row.iter().map(|&v| v as u32).collect())
        .collect())
}

/// Every case of `tokenizer_cases.json`: the untruncated ids and the 77-id `clip.tokenize` row.
pub fn tokenizer_cases(cases_file: &Path, vocab: &Path) -> Result<Vec<CaseResult>, ParityError> {
    let read = |cause: String| ParityError::Read {
        path: cases_file.to_path_buf(),
        cause,
    };
    let text = std::fs::read_to_string(cases_file).map_err(|e| read(e.to_string()))?;
    let cases: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| read(format!("not valid JSON: {e}")))?;
    let cases = cases
        .as_array()
        .ok_or_else(|| read("not a list of cases".into()))?;
    let tokenizer = crate::weights::models::load_clip_tokenizer(vocab)
        .map_err(|e| ParityError::Network(e.to_string()))?;
    let ids_of = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect())
            .unwrap_or_default()
    };
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let input = case["text"].as_str().unwrap_or_default();
        let label = format!("tokenizer[{i}] {:?}", input.chars().take(32).collect::<String>());
        let mut problems = Vec::new();
        if let Some(cleaned) = case["cleaned"].as_str() {
            let got = clip_text::clean(input);
            if got != cleaned {
                problems.push(format!("cleaned {got:?}, reference {cleaned:?}"));
            }
        }
        let mut full = vec![clip_text::SOT];
        full.extend(tokenizer.encode(input));
        full.push(clip_text::EOT);
        let want = ids_of(&case["ids"]);
        if full != want {
            problems.push(format!("ids {full:?}, reference {want:?}"));
        }
        let want77 = ids_of(&case["context77"]);
        match tokenizer.tokenize(input, want77.len(), Truncate::Yes) {
            Ok(row) if row == want77 => {}
            Ok(row) => problems.push(format!("context row {row:?}, reference {want77:?}")),
            Err(e) => problems.push(e.to_string()),
        }
        let fits = case["fits_context"].as_bool().unwrap_or(true);
        if tokenizer.tokenize(input, want77.len(), Truncate::No).is_ok() != fits {
            problems.push(format!(
                "untruncated tokenize should {}",
                if fits { "succeed" } else { "fail" }
            ));
        }
        results.push(CaseResult {
            name: label,
            passed: problems.is_empty(),
            max_abs_err: if problems.is_empty() { 0.0 } else { f64::NAN },
            note: (!problems.is_empty()).then(|| problems.join("; ")),
        });
    }
    Ok(results)
}
