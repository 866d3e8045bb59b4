//! CLIP's text cleaning before the pre-tokeniser: `whitespace_clean(basic_clean(text)).lower()`,
//! where `basic_clean` is `ftfy.fix_text`, `html.unescape` twice and `strip`.
//!
//! ftfy is reproduced for what prompts contain: line breaks, terminal escapes and control
//! characters, C1 controls, HTML entities (only when the line has no `<`, as ftfy decides),
//! Latin ligatures, full/half-width forms, curly quotes, NFC, and UTF-8 read as Windows-1252
//! ("cafÃ©" → "café"). ftfy's mojibake repair weighs a "badness" score over the whole text; here
//! a run is repaired when it is a complete, valid UTF-8 sequence spelled in Windows-1252, which
//! catches the usual cases and leaves ordinary text alone.

use std::sync::LazyLock;

use icu_normalizer::ComposingNormalizerBorrowed;
use regex::Regex;

use super::html::{self, CP1252_HIGH};

static ANSI_ESCAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*[a-zA-Z]").unwrap_or_else(|e| panic!("fixed pattern: {e}")));
static HTML_ENTITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").unwrap_or_else(|e| panic!("fixed pattern: {e}")));
static WHITESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s+").unwrap_or_else(|e| panic!("fixed pattern: {e}")));

/// The string CLIP's pre-tokenising pattern sees.
pub fn clean(text: &str) -> String {
    let text = fix_text(text);
    let text = html::unescape(&html::unescape(&text));
    let text = WHITESPACE.replace_all(text.trim(), " ");
    text.trim().to_lowercase()
}

/// ftfy's `fix_text` with its default settings, for the subset described in the module docs.
pub fn fix_text(text: &str) -> String {
    // ftfy works line by line; once a line contains '<' it stops decoding entities for the rest.
    let mut unescape_entities = true;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.contains('<') {
            unescape_entities = false;
        }
        out.push_str(&fix_segment(line, unescape_entities));
    }
    out
}

fn fix_segment(text: &str, unescape_entities: bool) -> String {
    let mut text = text.to_string();
    // ftfy repeats its fixes until nothing changes; each pass only shortens or maps characters.
    for _ in 0..16 {
        let before = text.clone();
        if unescape_entities {
            text = unescape_ftfy(&text);
        }
        text = fix_mojibake(&text);
        text = text.chars().map(fix_c1).collect();
        text = text
            .chars()
            .map(|c| ligature(c).map(str::to_string).unwrap_or_else(|| c.to_string()))
            .collect();
        text = fix_width(&text);
        text = text.chars().map(uncurl).collect();
        text = text
            .replace("\r\n", "\n")
            .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
        text = ANSI_ESCAPE.replace_all(&text, "").into_owned();
        text.retain(|c| !is_removed_control(c));
        text = ComposingNormalizerBorrowed::new_nfc()
            .normalize(&text)
            .into_owned();
        if text == before {
            break;
        }
    }
    text
}

/// ftfy's `unescape_html`: only complete `&...;` references, numeric ones only when they decode.
fn unescape_ftfy(text: &str) -> String {
    HTML_ENTITY
        .replace_all(text, |caps: &regex::Captures| {
            let whole = &caps[0];
            let body = &whole[1..whole.len() - 1];
            if body.starts_with('#') {
                let decoded = html::unescape(whole);
                if decoded.contains(';') {
                    whole.to_string()
                } else {
                    decoded
                }
            } else {
                html::named(body, true)
                    .or_else(|| {
                        // ftfy also reads all-caps spellings of lower-case names ("&EACUTE;" → "É").
                        let all_caps = body.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                        all_caps
                            .then(|| html::named(&body.to_ascii_lowercase(), true))
                            .flatten()
                            .map(|s| s.to_uppercase())
                    })
                    .unwrap_or_else(|| whole.to_string())
            }
        })
        .into_owned()
}

/// The byte Windows-1252 (with ftfy's "sloppy" pass-through of undefined bytes) encodes `c` as.
fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..=0xFF).contains(&u) {
        return Some(u as u8);
    }
    CP1252_HIGH.iter().position(|&h| h == c).map(|i| 0x80 + i as u8)
}

/// Replaces runs that are UTF-8 byte sequences decoded as Windows-1252 by what they encode.
fn fix_mojibake(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some((decoded, used)) = utf8_sequence_at(&chars[i..]) {
            out.push(decoded);
            i += used;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn utf8_sequence_at(chars: &[char]) -> Option<(char, usize)> {
    let lead = cp1252_byte(*chars.first()?)?;
    let len = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut bytes = vec![lead];
    for &c in chars.get(1..len)? {
        let b = cp1252_byte(c)?;
        if !(0x80..=0xBF).contains(&b) {
            return None;
        }
        bytes.push(b);
    }
    let decoded = std::str::from_utf8(&bytes).ok()?.chars().next()?;
    Some((decoded, len))
}

fn fix_c1(c: char) -> char {
    match c as u32 {
        u @ 0x80..=0x9F => CP1252_HIGH[(u - 0x80) as usize],
        _ => c,
    }
}

fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// Half- and full-width forms (U+FF01..U+FFEF) to their NFKC equivalents, ideographic space to space.
fn fix_width(text: &str) -> String {
    if !text
        .chars()
        .any(|c| c == '\u{3000}' || ('\u{FF01}'..'\u{FFF0}').contains(&c))
    {
        return text.to_string();
    }
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let mut out = String::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{FF01}'..='\u{FFEF}' => out.push_str(&nfkc.normalize(c.encode_utf8(&mut buf))),
            _ => out.push(c),
        }
    }
    out
}

fn uncurl(c: char) -> char {
    match c {
        '\u{02BC}' | '\u{2018}'..='\u{201B}' => '\'',
        '\u{201C}'..='\u{201F}' => '"',
        _ => c,
    }
}

fn is_removed_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}

#[cfg(test)]
mod tests {
    use super::{clean, fix_text};

    #[test]
    fn ftfy_subset() {
        assert_eq!(fix_text("mojibake: cafÃ©"), "mojibake: café");
        assert_eq!(fix_text("itâ€™s"), "it's");
        assert_eq!(fix_text("“curly” ‘single’"), "\"curly\" 'single'");
        assert_eq!(fix_text("ﬁne ＦＵＬＬ　１"), "fine FULL 1");
        assert_eq!(fix_text("a\r\nb\x1b[31mc\x00"), "a\nbc");
        assert_eq!(fix_text("cafe\u{301}"), "café");
        assert_eq!(fix_text("&lt;b&gt; x"), "<b> x");
        assert_eq!(fix_text("<b> &lt;"), "<b> &lt;");
        assert_eq!(fix_text("plain Ã text"), "plain Ã text");
    }

    #[test]
    fn whitespace_and_case() {
        assert_eq!(clean("  Multiple \t SPACES\n "), "multiple spaces");
        assert_eq!(clean("İstanbul"), "i\u{307}stanbul");
        assert_eq!(clean("a\u{200b}b"), "a\u{200b}b");
    }
}
