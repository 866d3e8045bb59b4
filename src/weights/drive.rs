//! Google Drive's large-file confirmation. A `drive.google.com/uc?id=…` link to a file too large for
//! Drive's virus scan answers with a web page instead of the file. Today that page holds a form
//! (`id="download-form"`, action `https://drive.usercontent.google.com/download`, hidden inputs `id`,
//! `export`, `confirm`, `uuid`); older pages link to `/uc?export=download&confirm=TOKEN&id=…`, or only
//! set a `download_warning…=TOKEN` cookie. Each gives the URL of the file itself.
//!
//! Only Drive's own pages are read this way and only Drive's own hosts are followed: an HTML page
//! from anywhere else, or one that points away from Drive, is still refused as "not the file".

/// The hosts that serve Drive files and their confirmation pages.
const DRIVE_HOSTS: &[&str] = &[
    "drive.google.com",
    "drive.usercontent.google.com",
    "docs.google.com",
];

/// The part of a page read for a confirmation; Drive's pages are a few kilobytes.
pub const PAGE_LIMIT: u64 = 512 * 1024;

/// Whether `url` is an https URL on one of Drive's hosts.
pub fn is_drive_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .map(host_of)
        .is_some_and(|host| DRIVE_HOSTS.contains(&host.to_ascii_lowercase().as_str()))
}

/// `host[:port]` of a URL without its scheme.
fn host_of(rest: &str) -> &str {
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// The URL that gets the file behind Drive's confirmation `page` (served for `page_url`, with these
/// `Set-Cookie` values), or `None` when the page is no confirmation Facecast may follow.
pub fn confirmation(page_url: &str, page: &str, cookies: &[String]) -> Option<String> {
    if !is_drive_url(page_url) {
        return None;
    }
    let next = download_form(page)
        .or_else(|| confirm_link(page_url, page))
        .or_else(|| warning_cookie(page_url, cookies))?;
    // A page that leads back to itself would be followed in a circle.
    (is_drive_url(&next) && next != page_url).then_some(next)
}

/// What a page that is not the file says, for the refusal: Drive's quota page is worth naming.
pub fn page_reason(page: &str) -> Option<&'static str> {
    let lower = page.to_ascii_lowercase();
    if lower.contains("too many users have viewed or downloaded this file") || lower.contains("quota") {
        Some("Google Drive says the file's download quota is exhausted; try again in a day")
    } else if lower.contains("accounts.google.com") || lower.contains("you need access") {
        Some("Google Drive asks for a sign-in: the file is not public")
    } else {
        None
    }
}

/// `<form id="download-form" action="…">` with its hidden inputs, as a GET URL.
fn download_form(page: &str) -> Option<String> {
    let mut rest = page;
    while let Some(start) = find_ci(rest, "<form") {
        let after = &rest[start..];
        let tag_end = after.find('>')?;
        let tag = &after[..tag_end];
        let body_end = find_ci(after, "</form").unwrap_or(after.len());
        let body = &after[tag_end..body_end];
        rest = &after[tag_end..];
        if attr(tag, "id").as_deref() != Some("download-form") {
            continue;
        }
        let action = attr(tag, "action")?;
        let mut query = Vec::new();
        let mut inputs = body;
        while let Some(i) = find_ci(inputs, "<input") {
            let input = &inputs[i..];
            let end = input.find('>').unwrap_or(input.len());
            let tag = &input[..end];
            inputs = &input[end..];
            if attr(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden"))
                && let Some(name) = attr(tag, "name")
            {
                let value = attr(tag, "value").unwrap_or_default();
                query.push(format!("{}={}", encode(&name), encode(&value)));
            }
        }
        if query.is_empty() {
            return None;
        }
        let sep = if action.contains('?') { '&' } else { '?' };
        return Some(format!("{action}{sep}{}", query.join("&")));
    }
    None
}

/// An older page's link that carries `confirm=`.
fn confirm_link(page_url: &str, page: &str) -> Option<String> {
    let mut rest = page;
    while let Some(i) = find_ci(rest, "href=") {
        let after = &rest[i + 5..];
        let quote = after.chars().next()?;
        let value = if quote == '"' || quote == '\'' {
            let inner = &after[1..];
            &inner[..inner.find(quote)?]
        } else {
            &after[..after.find([' ', '>']).unwrap_or(after.len())]
        };
        rest = after;
        let link = unescape(value);
        if link.contains("confirm=") && (link.contains("export=download") || link.contains("/uc?")) {
            return Some(resolve(page_url, &link));
        }
    }
    None
}

/// `download_warning…=TOKEN` from a `Set-Cookie` header: the page's URL with `confirm=TOKEN`.
fn warning_cookie(page_url: &str, cookies: &[String]) -> Option<String> {
    let token = cookies.iter().find_map(|cookie| {
        let pair = cookie.split(';').next()?.trim();
        let (name, value) = pair.split_once('=')?;
        (name.starts_with("download_warning") && !value.is_empty()).then(|| value.to_string())
    })?;
    let (base, query) = page_url.split_once('?').unwrap_or((page_url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("confirm="))
        .collect();
    let confirm = format!("confirm={}", encode(&token));
    params.push(&confirm);
    Some(format!("{base}?{}", params.join("&")))
}

/// `location` (absolute, scheme-relative, host-relative or path-relative) against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let host = host_of(rest);
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let path = rest[host.len()..].split(['?', '#']).next().unwrap_or_default();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{host}{dir}{location}")
}

/// The value of attribute `name` in one tag (quoted or bare), HTML entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => &value[1..1 + value[1..].find(q)?],
            _ => &value[..value.find([' ', '>']).unwrap_or(value.len())],
        };
        return Some(unescape(raw));
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Percent-encoding of a query value: everything but the unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UC: &str = "https://drive.google.com/uc?id=1AbC&export=download";

    #[test]
    fn the_download_form_becomes_the_usercontent_url_with_every_hidden_input() {
        let page = r#"<html><body><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
            <input type="submit" id="uc-download-link" class="goog-inline-block" value="Download anyway"/>
            <input type="hidden" name="id" value="1AbC"><input type="hidden" name="export" value="download">
            <input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="a1b2-c3 d4"></form></body></html>"#;
        assert_eq!(
            confirmation(UC, page, &[]).as_deref(),
            Some(
                "https://drive.usercontent.google.com/download?id=1AbC&export=download&confirm=t&uuid=a1b2-c3%20d4"
            )
        );
    }

    #[test]
    fn an_older_page_gives_its_confirm_link_or_its_warning_cookie() {
        let page = r#"<a id="uc-download-link" href="/uc?export=download&amp;confirm=Xy_9&amp;id=1AbC">Download anyway</a>"#;
        assert_eq!(
            confirmation(UC, page, &[]).as_deref(),
            Some("https://drive.google.com/uc?export=download&confirm=Xy_9&id=1AbC")
        );
        let cookies = [
            "download_warning_13058876669334088843_1AbC=Qz7; Domain=.drive.google.com; Path=/uc".to_string(),
        ];
        assert_eq!(
            confirmation(UC, "<html>virus scan warning</html>", &cookies).as_deref(),
            Some("https://drive.google.com/uc?id=1AbC&export=download&confirm=Qz7")
        );
    }

    #[test]
    fn pages_from_elsewhere_or_pointing_elsewhere_are_not_followed() {
        let form = r#"<form id="download-form" action="https://files.example/download"><input type="hidden" name="id" value="1"></form>"#;
        assert_eq!(confirmation(UC, form, &[]), None, "off-Drive action");
        let good = r#"<form id="download-form" action="https://drive.usercontent.google.com/download"><input type="hidden" name="id" value="1"></form>"#;
        assert_eq!(
            confirmation("https://example.com/file", good, &[]),
            None,
            "not a Drive page"
        );
        assert_eq!(
            confirmation("http://drive.google.com/uc?id=1", good, &[]),
            None,
            "not https"
        );
        assert_eq!(confirmation(UC, "<html>Sign in</html>", &[]), None);
    }

    #[test]
    fn quota_and_sign_in_pages_are_named() {
        assert!(page_reason("Too many users have viewed or downloaded this file recently").is_some());
        assert!(page_reason("<a href=\"https://accounts.google.com/ServiceLogin\">").is_some());
        assert_eq!(page_reason("<html>hello</html>"), None);
    }

    #[test]
    fn locations_resolve_against_the_page() {
        assert_eq!(resolve(UC, "https://x.example/a"), "https://x.example/a");
        assert_eq!(resolve(UC, "//x.example/a"), "https://x.example/a");
        assert_eq!(
            resolve(UC, "/download?id=1"),
            "https://drive.google.com/download?id=1"
        );
        assert_eq!(resolve("https://h.example/a/b?q=1", "c"), "https://h.example/a/c");
        assert_eq!(resolve("https://h.example", "c"), "https://h.example/c");
    }
}
