//! Small structural readers for facts the decoders do not report: whether a JPEG is complete and
//! how many colour components it has, how many frames a GIF holds, whether a WebP is animated, and
//! which colour space an ICC profile describes. They only walk headers and never allocate pixels.

/// What a walk over a JPEG's markers found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct JpegInfo {
    /// Number of components in the frame header (1 grey, 3 YCbCr/RGB, 4 CMYK or YCCK).
    pub components: Option<u8>,
    /// The colour transform of an Adobe APP14 segment (0 CMYK/RGB, 1 YCbCr, 2 YCCK).
    pub adobe_transform: Option<u8>,
    /// Whether the end-of-image marker follows the entropy-coded data. zune-jpeg decodes a
    /// truncated file without complaint (filling the rest with grey), so this is how a cut-off
    /// download or copy is told apart from a whole photo.
    pub complete: bool,
}

pub(crate) fn jpeg_info(bytes: &[u8]) -> JpegInfo {
    let mut info = JpegInfo::default();
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return info;
    }
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return info;
        };
        i += 1;
        match marker {
            0xD9 => {
                info.complete = true;
                return info;
            }
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return info;
        };
        let Some(segment) = len.checked_sub(2).and_then(|n| bytes.get(i + 2..i + 2 + n)) else {
            return info;
        };
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                info.components = segment.get(5).copied();
            }
            0xEE if segment.starts_with(b"Adobe") => {
                info.adobe_transform = segment.get(11).copied();
            }
            _ => {}
        }
        i += len;
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by a stuffed 0x00, a restart marker or fill
            // bytes; anything else is a real marker (EOI, or DHT/SOS of a progressive scan).
            loop {
                match bytes
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
                {
                    None => return info,
                    Some(p) => i += p,
                }
                match bytes.get(i + 1) {
                    None => return info,
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Number of frames in a GIF, counting no further than `stop_at`; `None` if the block structure
/// cannot be followed (the decoder reports the damage itself).
pub(crate) fn gif_frame_count(bytes: &[u8], stop_at: usize) -> Option<usize> {
    if !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return None;
    }
    let packed = *bytes.get(10)?;
    let mut i = 13;
    if packed & 0x80 != 0 {
        i += 3 << ((packed & 7) + 1);
    }
    let skip_sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let size = usize::from(*bytes.get(i)?);
            i += 1;
            if size == 0 {
                return Some(i);
            }
            i += size;
        }
    };
    let mut frames = 0;
    while frames < stop_at {
        match *bytes.get(i)? {
            0x21 => i = skip_sub_blocks(i + 2)?,
            0x2C => {
                let local = *bytes.get(i + 9)?;
                i += 10;
                if local & 0x80 != 0 {
                    i += 3 << ((local & 7) + 1);
                }
                // LZW minimum code size, then the image data.
                i = skip_sub_blocks(i + 1)?;
                frames += 1;
            }
            0x3B => break,
            _ => return None,
        }
    }
    Some(frames)
}

/// Whether an extended WebP declares animation in its VP8X flags.
pub(crate) fn webp_is_animated(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && &bytes[0..4] == b"RIFF"
        && &bytes[8..12] == b"WEBP"
        && &bytes[12..16] == b"VP8X"
        && bytes[20] & 0x02 != 0
}

/// The data colour space signature of an ICC profile (`b"RGB "`, `b"CMYK"`, `b"GRAY"`, ...), or
/// `None` if the blob is too short or lacks the `acsp` signature to be a profile.
pub(crate) fn icc_colour_space(profile: &[u8]) -> Option<[u8; 4]> {
    if profile.len() < 128 || &profile[36..40] != b"acsp" {
        return None;
    }
    let mut space = [0; 4];
    space.copy_from_slice(&profile[16..20]);
    Some(space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_walk_needs_eoi_after_scan_data() {
        // SOI, SOF0 with 4 components, SOS, data containing stuffed FF00 and a restart, EOI.
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0, 1, 0, 1, 4, 0, 0, 0]);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x04, 0, 0]);
        jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        let cut = jpeg.clone();
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let whole = jpeg_info(&jpeg);
        assert!(whole.complete);
        assert_eq!(whole.components, Some(4));
        assert!(!jpeg_info(&cut).complete);
    }

    #[test]
    fn icc_space_requires_signature() {
        let mut profile = vec![0u8; 128];
        profile[16..20].copy_from_slice(b"CMYK");
        assert_eq!(icc_colour_space(&profile), None);
        profile[36..40].copy_from_slice(b"acsp");
        assert_eq!(icc_colour_space(&profile), Some(*b"CMYK"));
    }
}
