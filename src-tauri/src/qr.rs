//! QR codes for join links, drawn as SVG in Rust so the UI needs no QR library.

use qrcode::{EcLevel, QrCode, render::svg};

#[derive(Debug, thiserror::Error)]
#[error("text too long for a QR code: {0}")]
pub(crate) struct QrError(String);

pub(crate) fn svg(text: &str) -> Result<String, QrError> {
    // Medium error correction: survives a phone camera at an angle, still small for a link.
    let code = QrCode::with_error_correction_level(text, EcLevel::M)
        .map_err(|e| QrError(e.to_string()))?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_svg_that_encodes_the_text() {
        let out = svg("ferry://join/ABCDEFGHJK/purple-otter").unwrap();
        assert!(out.contains("<svg"), "{out}");
        assert!(out.contains("#000000"));
        // A longer text needs a bigger symbol: the path data grows with it.
        let longer = svg(&"ferry://join/ABCDEFGHJK/".repeat(8)).unwrap();
        assert!(longer.len() > out.len());
    }

    #[test]
    fn refuses_text_beyond_qr_capacity() {
        assert!(svg(&"x".repeat(5000)).is_err());
    }
}
