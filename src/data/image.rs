//! A user's own PNG/JPEG image as the bytes a network was trained on.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// What a file's first bytes say it is, when it is an image format other than PNG and
/// JPEG (which `predict` reads): `Some("GIF")`.
pub fn other_image_format(head: &[u8]) -> Option<&'static str> {
    let known: [(&[u8], &str); 6] = [
        (b"GIF8", "GIF"),
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"RIFF", "WebP (or another RIFF)"),
        (b"\0\0\x01\0", "ICO"),
    ];
    known
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Whether to invert grey levels (MNIST digits are light on dark).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invert {
    /// Invert an image whose border is bright.
    Auto,
    Yes,
    No,
}

/// An image as the bytes the network was trained on: grey, resized to `shape` (`[h, w]`),
/// inverted when it is dark-on-light (MNIST digits are light on dark).
pub fn image_bytes(path: &Path, shape: &[usize], invert: Invert) -> Result<Vec<u8>> {
    let (h, w) = match shape {
        [h, w] | [h, w, 1] => (*h, *w),
        _ => bail!(
            "the model was trained on samples of shape {shape:?}, not on 2-D images; \
             pass an IDX file instead"
        ),
    };
    let file = super::files::open_regular(path)
        .map_err(|e| anyhow::anyhow!("cannot read image {}: {e}", path.display()))?;
    let img = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable PNG or JPEG image", path.display()))?
        .to_luma8();
    // Upscaling a few pixels to the model's size invents the whole image.
    let (min_w, min_h) = (w.div_ceil(4).max(2), h.div_ceil(4).max(2));
    if (img.width() as usize) < min_w || (img.height() as usize) < min_h {
        bail!(
            "{}: the image is {}x{} pixels, too small for a model of {w}x{h} inputs (at least \
             {min_w}x{min_h}); pass the image at its real size",
            path.display(),
            img.width(),
            img.height()
        );
    }
    let (w32, h32) = (u32::try_from(w)?, u32::try_from(h)?);
    let small = image::imageops::resize(&img, w32, h32, image::imageops::FilterType::Triangle);
    let mut bytes = small.into_raw();
    let invert = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => border_mean(&bytes, h, w) > 127.0,
    };
    if invert {
        bytes.iter_mut().for_each(|b| *b = 255 - *b);
    }
    Ok(bytes)
}

fn border_mean(bytes: &[u8], h: usize, w: usize) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for r in 0..h {
        for c in 0..w {
            if r == 0 || c == 0 || r + 1 == h || c + 1 == w {
                sum += f64::from(bytes[r * w + c]);
                count += 1;
            }
        }
    }
    sum / count.max(1) as f64
}
