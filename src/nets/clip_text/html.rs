//! Python's `html.unescape`, which CLIP's `basic_clean` applies twice, for the entities that occur
//! in prompts: every numeric reference (with the HTML5 rules for invalid code points) and the
//! named references of Latin-1, typography and a few symbols. Names outside that table are left
//! as written; Python would decode the rarer ones of the 2,231 HTML5 names too.

/// Latin-1 names for U+00A0..=U+00FF in code point order; HTML5 also accepts them without `;`.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo",
    "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
    "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",
    "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
    "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash",
    "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde",
    "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc",
    "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
];

/// Other legacy names that HTML5 accepts without `;`.
const LEGACY: [(&str, &str); 10] = [
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("AMP", "&"),
    ("LT", "<"),
    ("GT", ">"),
    ("QUOT", "\""),
    ("COPY", "©"),
    ("REG", "®"),
];

/// Names only recognised with their `;`.
const WITH_SEMICOLON: [(&str, &str); 36] = [
    ("apos", "'"),
    ("hellip", "…"),
    ("mdash", "—"),
    ("ndash", "–"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("sbquo", "‚"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("bdquo", "„"),
    ("lsaquo", "‹"),
    ("rsaquo", "›"),
    ("bull", "•"),
    ("middot", "·"),
    ("dagger", "†"),
    ("Dagger", "‡"),
    ("permil", "‰"),
    ("prime", "′"),
    ("Prime", "″"),
    ("euro", "€"),
    ("trade", "™"),
    ("TRADE", "™"),
    ("hearts", "♥"),
    ("star", "☆"),
    ("starf", "★"),
    ("check", "✓"),
    ("checkmark", "✓"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("zwnj", "\u{200C}"),
    ("zwj", "\u{200D}"),
    ("OElig", "Œ"),
    ("oelig", "œ"),
    ("Scaron", "Š"),
    ("scaron", "š"),
];

/// Windows-1252 meanings of 0x80..=0x9F; the five undefined bytes stand for themselves.
pub(crate) const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}',
    '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

/// The decoded text of a name, `name` given without `;`; `semicolon` says whether one followed.
pub(crate) fn named(name: &str, semicolon: bool) -> Option<String> {
    if let Some(i) = LATIN1.iter().position(|&n| n == name) {
        return char::from_u32(0xA0 + i as u32).map(String::from);
    }
    if let Some((_, v)) = LEGACY.iter().find(|(n, _)| *n == name) {
        return Some(v.to_string());
    }
    if semicolon {
        return WITH_SEMICOLON
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string());
    }
    None
}

fn legacy_without_semicolon(name: &str) -> Option<&'static str> {
    if let Some(i) = LATIN1.iter().position(|&n| n == name) {
        return Some(LATIN1[i]);
    }
    LEGACY.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
}

/// A numeric character reference's value, following Python's `html._replace_charref`.
pub(crate) fn numeric(num: Option<u32>) -> String {
    let Some(num) = num else { return "\u{FFFD}".into() };
    match num {
        0x00 => "\u{FFFD}".into(),
        0x0D => "\r".into(),
        0x80..=0x9F => CP1252_HIGH[(num - 0x80) as usize].to_string(),
        0xD800..=0xDFFF => "\u{FFFD}".into(),
        n if n > 0x10FFFF => "\u{FFFD}".into(),
        0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF => String::new(),
        n if n & 0xFFFE == 0xFFFE => String::new(),
        n => char::from_u32(n)
            .map(String::from)
            .unwrap_or_else(|| "\u{FFFD}".into()),
    }
}

fn parse_number(digits: &str, radix: u32) -> Option<u32> {
    // Python's integers never overflow; anything past u32 is past U+10FFFF anyway.
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 8 {
        return None;
    }
    if trimmed.is_empty() {
        Some(0)
    } else {
        u32::from_str_radix(trimmed, radix).ok()
    }
}

/// `html.unescape(text)`.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '&' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match reference_at(&chars, i + 1) {
            Some((replacement, end)) => {
                out.push_str(&replacement);
                i = end;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    out
}

/// The reference starting after an `&` at `start`: its replacement and where it ends.
fn reference_at(chars: &[char], start: usize) -> Option<(String, usize)> {
    let at = |k: usize| chars.get(k).copied();
    if at(start) == Some('#') {
        let hex = matches!(at(start + 1), Some('x' | 'X'));
        let first = if hex { start + 2 } else { start + 1 };
        let mut end = first;
        while at(end).is_some_and(|c| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        }) {
            end += 1;
        }
        if end == first {
            return None;
        }
        let digits: String = chars[first..end].iter().collect();
        let value = numeric(parse_number(&digits, if hex { 16 } else { 10 }));
        let end = if at(end) == Some(';') { end + 1 } else { end };
        return Some((value, end));
    }
    let mut end = start;
    while end - start < 32
        && at(end).is_some_and(|c| !matches!(c, '\t' | '\n' | '\x0C' | ' ' | '<' | '&' | '#' | ';'))
    {
        end += 1;
    }
    if end == start {
        return None;
    }
    let name: String = chars[start..end].iter().collect();
    let semicolon = at(end) == Some(';');
    if let Some(v) = named(&name, semicolon) {
        return Some((v, if semicolon { end + 1 } else { end }));
    }
    // The longest legacy name that prefixes the run, as the HTML5 standard asks ("&ampx" → "&x").
    let consumed = end + usize::from(semicolon);
    for len in (2..name.chars().count()).rev() {
        let prefix: String = name.chars().take(len).collect();
        if let Some(n) = legacy_without_semicolon(&prefix) {
            let value = named(n, false).unwrap_or_default();
            let rest: String = chars[start + len..consumed].iter().collect();
            return Some((value + &rest, consumed));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn follows_python_html_unescape() {
        assert_eq!(
            unescape("&amp; &lt;b&gt; &quot;q&quot; &#39;a&#39; a&nbsp;b"),
            "& <b> \"q\" 'a' a\u{a0}b"
        );
        assert_eq!(unescape("&amp;amp;"), "&amp;");
        assert_eq!(unescape("&#x41;&#65&#128;&#0;"), "AA€\u{FFFD}");
        assert_eq!(
            unescape("&ampx &copy2 &unknown; & alone"),
            "&x ©2 &unknown; & alone"
        );
        assert_eq!(unescape("caf&eacute; &hellip;"), "café …");
    }
}
