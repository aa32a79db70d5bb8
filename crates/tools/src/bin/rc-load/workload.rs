//! What to send next: operation mix, key choice (uniform or Zipf), value sizes, key
//! names and value bytes.
//!
//! Knows nothing of sockets or wire formats. Every choice is cheap (a few integer
//! operations; Zipf adds two `ln`/`exp` per draw) and deterministic for a given seed, so
//! two runs send the same sequence.

use ringcache_tools::Rng;

/// A set or a get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
}

/// Longest key name [`key_name`] writes (`key:` and up to 20 digits).
pub const KEY_NAME_MAX: usize = 24;

/// Writes the name of key number `n` into `buf`: `key:` and `n` zero-padded to
/// `digits` digits (11 bytes for the default key space, as memtier's are short too).
pub fn key_name(buf: &mut [u8; KEY_NAME_MAX], n: u64, digits: usize) -> &[u8] {
    buf[..4].copy_from_slice(b"key:");
    let end = 4 + digits;
    let mut n = n;
    for slot in buf[4..end].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[..end]
}

/// Digits needed to write every key number below `keys`, at least 7.
pub fn key_digits(keys: u64) -> usize {
    let mut digits = 1;
    let mut limit = 10u64;
    while limit < keys {
        digits += 1;
        limit = limit.saturating_mul(10);
    }
    digits.max(7)
}

/// The bytes every value is cut from: printable, so a text dump stays readable.
pub fn value_bytes(max_len: usize) -> Vec<u8> {
    (0..max_len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Zipf-distributed ranks `1..=n` with exponent `s`, drawn by rejection-inversion
/// (Hörmann and Derflinger, "Rejection-inversion to generate variates from monotone
/// discrete distributions", 1996): constant time and memory for any `n`.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    /// `H(1.5) - 1`: the top of the inverted range (rank 1 is accepted as a whole).
    h_x1: f64,
    /// `H(n + 0.5)`: the bottom of the inverted range.
    h_n: f64,
    /// Draws within this distance of their rounded rank are accepted without a test.
    squeeze: f64,
}

impl Zipf {
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(n >= 1 && s > 0.0, "Zipf needs n >= 1 and s > 0");
        let mut z = Zipf {
            n: n as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            squeeze: 0.0,
        };
        z.h_x1 = z.big_h(1.5) - 1.0;
        z.h_n = z.big_h(n as f64 + 0.5);
        z.squeeze = 2.0 - z.big_h_inv(z.big_h(2.5) - z.h(2.0));
        z
    }

    /// The unnormalised density `x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// An antiderivative of `h`: `(x^(1-s) - 1) / (1-s)`, written so it stays exact
    /// as `s` approaches 1 (where it becomes `ln x`).
    fn big_h(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of [`Zipf::big_h`].
    fn big_h_inv(&self, y: f64) -> f64 {
        let t = (y * (1.0 - self.s)).max(-1.0);
        (ln1p_over_x(t) * y).exp()
    }

    /// A rank in `1..=n`; rank 1 is the most frequent.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.big_h_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.big_h(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// `(e^x - 1) / x`, 1 at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * (0.5 + x / 6.0)
    }
}

/// `ln(1 + x) / x`, 1 at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x / 3.0)
    }
}

/// How keys are chosen.
#[derive(Clone, Debug)]
pub enum KeyPattern {
    Uniform,
    Zipf(Zipf),
}

/// Value sizes: fixed, or uniform over an inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSize {
    pub min: usize,
    pub max: usize,
}

impl std::str::FromStr for ValueSize {
    type Err = String;

    /// `N` or `MIN-MAX` bytes.
    fn from_str(s: &str) -> Result<ValueSize, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("value size {s:?}: expected N or MIN-MAX bytes"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(s)?, num(s)?),
        };
        if min > max {
            return Err(format!("value size {s:?}: MIN is larger than MAX"));
        }
        if max > 1 << 20 {
            return Err(format!("value size {s:?}: at most 1048576 bytes"));
        }
        Ok(ValueSize { min, max })
    }
}

impl std::fmt::Display for ValueSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// The set:get mix, e.g. `1:10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub sets: u32,
    pub gets: u32,
}

impl std::str::FromStr for Ratio {
    type Err = String;

    fn from_str(s: &str) -> Result<Ratio, String> {
        let bad = || format!("ratio {s:?}: expected SETS:GETS, e.g. 1:10");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let sets = a.trim().parse().map_err(|_| bad())?;
        let gets = b.trim().parse().map_err(|_| bad())?;
        if sets == 0 && gets == 0 {
            return Err(bad());
        }
        Ok(Ratio { sets, gets })
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.sets, self.gets)
    }
}

/// One thread's stream of requests in the measured phase: the set:get mix in exact
/// proportion (round robin over a cycle of `sets + gets`), keys and value sizes drawn
/// at random.
#[derive(Clone, Debug)]
pub struct Mix {
    ratio: Ratio,
    cycle: u32,
    keys: u64,
    pattern: KeyPattern,
    sizes: ValueSize,
    rng: Rng,
}

impl Mix {
    pub fn new(ratio: Ratio, keys: u64, pattern: KeyPattern, sizes: ValueSize, seed: u64) -> Mix {
        let mut rng = Rng::new(seed);
        // Threads start at different places in the cycle.
        let cycle = rng.below(u64::from(ratio.sets + ratio.gets)) as u32;
        Mix {
            ratio,
            cycle,
            keys,
            pattern,
            sizes,
            rng,
        }
    }

    /// The next request: operation, key number, value length (0 for gets).
    pub fn next(&mut self) -> (Op, u64, usize) {
        let op = if self.cycle < self.ratio.sets {
            Op::Set
        } else {
            Op::Get
        };
        self.cycle += 1;
        if self.cycle == self.ratio.sets + self.ratio.gets {
            self.cycle = 0;
        }
        let key = match &self.pattern {
            KeyPattern::Uniform => self.rng.below(self.keys),
            KeyPattern::Zipf(z) => z.sample(&mut self.rng) - 1,
        };
        let len = match op {
            Op::Get => 0,
            Op::Set => self.value_len(),
        };
        (op, key, len)
    }

    /// A value length from the configured sizes.
    pub fn value_len(&mut self) -> usize {
        let span = (self.sizes.max - self.sizes.min) as u64;
        self.sizes.min
            + if span == 0 {
                0
            } else {
                self.rng.below(span + 1) as usize
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_fixed_width() {
        let mut buf = [0; KEY_NAME_MAX];
        assert_eq!(key_name(&mut buf, 42, 7), b"key:0000042");
        assert_eq!(key_digits(100_000), 7);
        assert_eq!(key_digits(10_000_000), 7);
        assert_eq!(key_digits(10_000_001), 8);
        assert_eq!(key_name(&mut buf, 12_345_678, 8), b"key:12345678");
    }

    #[test]
    fn ratio_is_exact_over_a_cycle() {
        let mut mix = Mix::new(
            "1:10".parse().unwrap(),
            1000,
            KeyPattern::Uniform,
            "32".parse().unwrap(),
            7,
        );
        let sets = (0..1100).filter(|_| mix.next().0 == Op::Set).count();
        assert_eq!(sets, 100);
    }

    #[test]
    fn value_sizes_stay_in_range() {
        let sizes: ValueSize = "10-20".parse().unwrap();
        let mut mix = Mix::new(
            Ratio { sets: 1, gets: 0 },
            10,
            KeyPattern::Uniform,
            sizes,
            1,
        );
        let lens: Vec<usize> = (0..1000).map(|_| mix.next().2).collect();
        assert!(lens.iter().all(|&l| (10..=20).contains(&l)));
        assert!(lens.contains(&10) && lens.contains(&20));
        assert!("5-4".parse::<ValueSize>().is_err());
    }

    #[test]
    fn zipf_frequencies_follow_the_law() {
        let (n, s) = (1000u64, 0.99);
        let z = Zipf::new(n, s);
        let mut rng = Rng::new(11);
        let draws = 400_000;
        let mut counts = vec![0u32; n as usize + 1];
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        for k in [1usize, 2, 10, 100] {
            let expected = draws as f64 * (k as f64).powf(-s) / norm;
            let got = f64::from(counts[k]);
            assert!(
                (got - expected).abs() < 0.05 * expected + 30.0,
                "rank {k}: {got} draws, expected {expected:.0}"
            );
        }
    }
}
