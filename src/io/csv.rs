//! CSV as product feeds write it (RFC 4180): comma-separated, fields in double quotes when they hold
//! a comma, a quote (doubled) or a line break, lines ending in LF or CRLF, an optional UTF-8 BOM.
//! Small enough to keep here rather than add a dependency.

/// A CSV file that cannot be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct CsvError {
    pub line: usize,
    pub detail: String,
}

/// One record and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Every record of `text`, blank lines left out.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut start_line = 1;
    // Whether the current field was quoted, and whether anything was read on this record.
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if !started_field(&field, quoted) => {
                quoted = true;
                started = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                        None => {
                            return Err(CsvError {
                                line: start_line,
                                detail: "a quoted field is never closed".into(),
                            });
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\n') | Some('\r') => {}
                    Some(other) => {
                        return Err(CsvError {
                            line,
                            detail: format!(
                                "'{other}' after a closing quote (a quote inside a field is written \"\")"
                            ),
                        });
                    }
                }
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if started || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push(Record {
                        line: start_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                quoted = false;
                started = false;
                line += 1;
                start_line = line;
            }
            c => {
                if quoted {
                    return Err(CsvError {
                        line,
                        detail: format!("'{c}' after a closing quote"),
                    });
                }
                started = true;
                field.push(c);
            }
        }
    }
    if started || !field.is_empty() {
        fields.push(field);
        records.push(Record {
            line: start_line,
            fields,
        });
    }
    Ok(records)
}

/// A quote opens a quoted field only at its start.
fn started_field(field: &str, quoted: bool) -> bool {
    quoted || !field.is_empty()
}

/// Appends one record to `out`, quoting the fields that need it, with a CRLF-free `\n` ending.
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let field = field.as_ref();
        if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ') {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text)
            .expect("parse")
            .into_iter()
            .map(|r| r.fields)
            .collect()
    }

    #[test]
    fn quotes_commas_line_breaks_and_a_bom_are_read() {
        let text = "\u{feff}id,url,title\r\n1,https://x/a.jpg,\"Dress, red\"\r\n\n2,b.jpg,\"say \"\"hi\"\"\nsecond line\"\n3,,\n";
        assert_eq!(
            fields(text),
            [
                vec!["id", "url", "title"],
                vec!["1", "https://x/a.jpg", "Dress, red"],
                vec!["2", "b.jpg", "say \"hi\"\nsecond line"],
                vec!["3", "", ""],
            ]
        );
        let records = parse(text).expect("parse");
        assert_eq!(
            records[3].line, 6,
            "line numbers count the break inside the quotes"
        );
        assert_eq!(fields("a,b"), [vec!["a", "b"]], "no final line break");
    }

    #[test]
    fn broken_quotes_are_refused_with_the_line() {
        let err = parse("id,url\n1,\"open\n").expect_err("unclosed");
        assert_eq!(err.line, 2);
        let err = parse("id,url\n1,\"a\"b\n").expect_err("text after the quote");
        assert_eq!(err.line, 2);
    }

    #[test]
    fn written_records_read_back() {
        let rows = [
            vec!["plain", "with, comma", "with \"quote\""],
            vec!["line\nbreak", "", " padded "],
        ];
        let mut out = String::new();
        for row in &rows {
            write_record(&mut out, row);
        }
        assert_eq!(fields(&out), rows);
    }
}
