//! The vendored MNIST files parse exactly as published.

mod common;

use backprop::data::idx::cache::CachePolicy;
use backprop::data::{load_idx_sets, standard_paths};

#[test]
fn vendored_mnist_has_the_published_shape_labels_and_statistics() {
    let paths = standard_paths(&common::mnist_dir()).unwrap();
    let (train, test) = load_idx_sets(&paths, None, &CachePolicy::default()).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.width(), 784);
    assert_eq!(train.sample_shape, vec![28, 28]);
    assert_eq!(train.classes(), Some(10));
    assert_eq!(train.label(0), 5);
    assert_eq!(test.label(0), 7);
    assert_eq!(
        train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );

    // Pixel statistics on /255, as published: mean 0.1307, std 0.3081.
    let mut row = vec![0.0f32; 784];
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for i in 0..train.len() {
        train.raw_features(i, &mut row);
        for &v in &row {
            let v = f64::from(v) / 255.0;
            sum += v;
            sum_sq += v * v;
        }
    }
    let n = (train.len() * 784) as f64;
    let mean = sum / n;
    let std = (sum_sq / n - mean * mean).sqrt();
    assert!((mean - 0.1307).abs() < 5e-5, "{mean}");
    assert!((std - 0.3081).abs() < 5e-5, "{std}");
}

#[test]
fn the_first_training_image_is_a_five_drawn_in_the_middle() {
    let paths = standard_paths(&common::mnist_dir()).unwrap();
    let (train, _) = load_idx_sets(&paths, None, &CachePolicy::default()).unwrap();
    let mut row = vec![0.0f32; 784];
    train.raw_features(0, &mut row);
    // Border rows are blank; ink sits in the centre.
    assert!(row[..28].iter().all(|&v| v == 0.0));
    let ink: f32 = row.iter().sum();
    let centre: f32 = (7..21)
        .flat_map(|r| (7..21).map(move |c| r * 28 + c))
        .map(|i| row[i])
        .sum();
    assert!(centre > 0.6 * ink, "{centre} of {ink}");
    // Row 5 of the first image, as published: the top of the five's stroke.
    let want = [
        3.0, 18.0, 18.0, 18.0, 126.0, 136.0, 175.0, 26.0, 166.0, 255.0, 247.0, 127.0,
    ];
    assert_eq!(row[5 * 28 + 12..5 * 28 + 24], want);
}
