//! openai/CLIP's `SimpleTokenizer` and `clip.tokenize`: cleaning, the pre-tokenising pattern,
//! byte-level BPE with `</w>` word ends, start/end tokens and the 77-token context.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::clean::clean;

/// `<|startoftext|>`.
pub const SOT: u32 = 49406;
/// `<|endoftext|>`; the text encoder pools at its first occurrence.
pub const EOT: u32 = 49407;
/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;
/// Merges CLIP uses (the file holds ~262k; the rest is unused).
const MERGES: usize = 49152 - 256 - 2;
const START_TEXT: &str = "<|startoftext|>";
const END_TEXT: &str = "<|endoftext|>";

/// The pre-tokenising pattern of `SimpleTokenizer` (Python `regex` with IGNORECASE). Rust's
/// engine has the same leftmost-first alternation, Unicode `\s`/`\p{L}`/`\p{N}` and simple case folding.
const PATTERN: &str =
    r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{}: cannot read the CLIP vocabulary: {cause}", path.display())]
    Read { path: PathBuf, cause: String },
    #[error("{}: not CLIP's BPE vocabulary: {cause}", path.display())]
    Vocabulary { path: PathBuf, cause: String },
    #[error("the prompt is {tokens} tokens long with start and end; CLIP reads at most {context}")]
    TooLong { tokens: usize, context: usize },
}

/// What to do with a prompt longer than the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncate {
    /// Fail, like `clip.tokenize(..., truncate=False)` (what StyleCLIP calls).
    No,
    /// Keep the first ids and end with `<|endoftext|>`, like `truncate=True`.
    Yes,
}

/// CLIP's byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    /// Id of each byte's symbol (`byte_id[b] + 256` is the same symbol ending a word).
    byte_id: [u32; 256],
    /// (left id, right id) → (merge rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    pattern: Regex,
    vocab_size: usize,
}

/// GPT-2's byte → character table, in the order CLIP numbers the byte symbols.
fn byte_symbols() -> Vec<(u8, char)> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut table: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    // The other 68 bytes get chr(256), chr(257), ... in increasing byte order.
    for (code, b) in (256u32..).zip((0..=255u8).filter(|&b| !printable(b))) {
        table.push((b, char::from_u32(code).unwrap_or('\u{FFFD}')));
    }
    table
}

impl ClipTokenizer {
    /// The vocabulary from the bytes of `bpe_simple_vocab_16e6.txt.gz` (gzip or plain text); `path`
    /// names the file in errors. Reading the file is `weights::models::load_clip_tokenizer`'s job.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<ClipTokenizer, TokenizerError> {
        let read_err = |cause: String| TokenizerError::Read {
            path: path.to_path_buf(),
            cause,
        };
        let mut text = String::new();
        if bytes.starts_with(&[0x1F, 0x8B]) {
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut text)
                .map_err(|e| read_err(format!("bad gzip stream: {e}")))?;
        } else {
            text = String::from_utf8(bytes).map_err(|_| read_err("neither gzip nor UTF-8 text".into()))?;
        }
        ClipTokenizer::from_merges(&text).map_err(|cause| TokenizerError::Vocabulary {
            path: path.to_path_buf(),
            cause,
        })
    }

    /// Builds the vocabulary from the merges file's text (a header line, then "a b" per line).
    pub fn from_merges(text: &str) -> Result<ClipTokenizer, String> {
        let lines: Vec<&str> = text.split('\n').skip(1).take(MERGES).collect();
        if lines.len() < MERGES {
            return Err(format!("{} merges, CLIP needs {MERGES}", lines.len()));
        }
        let symbols = byte_symbols();
        let mut vocab: Vec<String> = symbols.iter().map(|(_, c)| c.to_string()).collect();
        vocab.extend(symbols.iter().map(|(_, c)| format!("{c}</w>")));
        let mut pairs = Vec::with_capacity(MERGES);
        for (line_no, line) in lines.iter().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {} is not a merge \"a b\": {line:?}", line_no + 2));
            };
            vocab.push(format!("{a}{b}"));
            pairs.push((a, b));
        }
        vocab.push(START_TEXT.into());
        vocab.push(END_TEXT.into());
        // Like Python's dict(zip(vocab, range(...))): a repeated string keeps its last id.
        let encoder: HashMap<&str, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let mut merges = HashMap::with_capacity(MERGES);
        for (rank, (a, b)) in pairs.iter().enumerate() {
            let id = |s: &str| {
                encoder
                    .get(s)
                    .copied()
                    .ok_or_else(|| format!("merge {rank}: unknown symbol {s:?}"))
            };
            let merged = id(&format!("{a}{b}"))?;
            // Python's bpe_ranks is a dict too: a repeated pair keeps its last rank.
            merges.insert((id(a)?, id(b)?), (rank as u32, merged));
        }
        let mut byte_id = [0u32; 256];
        for (i, (b, _)) in symbols.iter().enumerate() {
            byte_id[*b as usize] = i as u32;
        }
        let pattern = Regex::new(PATTERN).map_err(|e| format!("pre-tokeniser pattern: {e}"))?;
        Ok(ClipTokenizer {
            byte_id,
            merges,
            pattern,
            vocab_size: vocab.len(),
        })
    }

    /// Number of ids (49,408).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// `SimpleTokenizer.encode`: ids of the text, without start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = clean(text);
        let mut ids = Vec::new();
        for piece in self.pattern.find_iter(&cleaned) {
            match piece.as_str() {
                START_TEXT => ids.push(SOT),
                END_TEXT => ids.push(EOT),
                word => ids.extend(self.bpe(word)),
            }
        }
        ids
    }

    /// `[SOT] + encode(text) + [EOT]`, zero-padded to `context` (id 0 is also "!", as in CLIP).
    pub fn tokenize(
        &self,
        text: &str,
        context: usize,
        truncate: Truncate,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::with_capacity(context);
        ids.push(SOT);
        ids.extend(self.encode(text));
        ids.push(EOT);
        if ids.len() > context {
            match truncate {
                Truncate::No => {
                    return Err(TokenizerError::TooLong {
                        tokens: ids.len(),
                        context,
                    });
                }
                Truncate::Yes => {
                    ids.truncate(context);
                    if let Some(last) = ids.last_mut() {
                        *last = EOT;
                    }
                }
            }
        }
        ids.resize(context, 0);
        Ok(ids)
    }

    /// Byte-level BPE of one pre-token: repeatedly merge every occurrence of the best-ranked pair.
    fn bpe(&self, word: &str) -> Vec<u32> {
        let mut symbols: Vec<u32> = word.bytes().map(|b| self.byte_id[b as usize]).collect();
        if let Some(last) = symbols.last_mut() {
            *last += 256;
        }
        loop {
            let best = symbols
                .windows(2)
                .filter_map(|w| {
                    self.merges
                        .get(&(w[0], w[1]))
                        .map(|&(rank, merged)| (rank, w[0], w[1], merged))
                })
                .min_by_key(|&(rank, ..)| rank);
            let Some((_, first, second, merged)) = best else {
                break;
            };
            let mut next = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if symbols[i] == first && symbols.get(i + 1) == Some(&second) {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(symbols[i]);
                    i += 1;
                }
            }
            symbols = next;
            if symbols.len() == 1 {
                break;
            }
        }
        symbols
    }
}

/// Removes `<|startoftext|>` / `<|endoftext|>` (any case) from a user's prompt: CLIP would read
/// them as control tokens and pool the text features at the wrong position.
pub fn strip_special_tokens(prompt: &str) -> String {
    let lower = prompt.to_lowercase();
    if !lower.contains(START_TEXT) && !lower.contains(END_TEXT) {
        return prompt.to_string();
    }
    static SPECIAL: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"(?i)<\|startoftext\|>|<\|endoftext\|>").unwrap_or_else(|e| panic!("fixed pattern: {e}"))
    });
    SPECIAL.replace_all(prompt, " ").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2_order() {
        let t = byte_symbols();
        assert_eq!(t.len(), 256);
        assert_eq!(t[0], (b'!', '!'));
        assert_eq!(t[93], (b'~', '~'));
        assert_eq!(t[188], (0, '\u{100}'));
        assert_eq!(t[255], (0xAD, char::from_u32(256 + 67).unwrap_or('?')));
    }

    #[test]
    fn strips_special_tokens() {
        assert_eq!(strip_special_tokens("a <|EndOfText|> b"), "a   b");
        assert_eq!(strip_special_tokens("plain"), "plain");
    }
}
