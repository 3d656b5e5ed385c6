//! The Porter stemmer exactly as Lucene's `PorterStemFilter` runs it
//! (`org.apache.lucene.analysis.en.PorterStemmer`, from Martin Porter's published code): the
//! 1980 algorithm with the published code's departures (`bli` → `ble`, `logi` → `log`), words
//! of fewer than three characters left alone. The `porter-stemmer` and Snowball crates differ
//! from it (`assembly` → `assembli`, `dry` → `dri`; Porter2 elsewhere), which moved search ranks.

/// Lucene's Porter stem of `word`.
pub fn stem(word: &str) -> String {
    let mut s = Stemmer { b: word.chars().collect(), k: 0, k0: 0, j: 0 };
    if s.b.len() < 3 {
        return word.to_owned();
    }
    s.k = s.b.len() - 1;
    s.step1ab();
    s.step1c();
    s.step2();
    s.step3();
    s.step4();
    s.step5();
    s.b[..=s.k].iter().collect()
}

struct Stemmer {
    b: Vec<char>,
    k: usize,
    k0: usize,
    j: usize,
}

impl Stemmer {
    fn cons(&self, i: usize) -> bool {
        match self.b[i] {
            'a' | 'e' | 'i' | 'o' | 'u' => false,
            'y' => i == self.k0 || !self.cons(i - 1),
            _ => true,
        }
    }

    /// The number of vowel-consonant sequences in `b[k0..=j]`.
    fn m(&self) -> usize {
        let (j, mut i, mut n) = (self.j as isize, self.k0 as isize, 0);
        loop {
            if i > j {
                return n;
            }
            if !self.cons(i as usize) {
                break;
            }
            i += 1;
        }
        i += 1;
        loop {
            loop {
                if i > j {
                    return n;
                }
                if self.cons(i as usize) {
                    break;
                }
                i += 1;
            }
            i += 1;
            n += 1;
            loop {
                if i > j {
                    return n;
                }
                if !self.cons(i as usize) {
                    break;
                }
                i += 1;
            }
            i += 1;
        }
    }

    fn vowel_in_stem(&self) -> bool {
        (self.k0..=self.j).any(|i| !self.cons(i))
    }

    fn double_c(&self, j: usize) -> bool {
        j > self.k0 && self.b[j] == self.b[j - 1] && self.cons(j)
    }

    fn cvc(&self, i: usize) -> bool {
        if i < self.k0 + 2 || !self.cons(i) || self.cons(i - 1) || !self.cons(i - 2) {
            return false;
        }
        !matches!(self.b[i], 'w' | 'x' | 'y')
    }

    /// Whether `b[..=k]` ends with `s`; sets `j` to the end of the rest. Lucene computes
    /// `j = k - len` in signed arithmetic: -1 when the whole word matched.
    fn ends(&mut self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let l = s.len();
        if l > self.k + 1 - self.k0 {
            return false;
        }
        let o = self.k + 1 - l;
        if self.b[o..=self.k] != s[..] {
            return false;
        }
        self.j = (self.k as isize - l as isize) as usize;
        true
    }

    /// `j` as Lucene's signed index (`-1` when a suffix is the whole word).
    fn j_signed(&self) -> isize {
        self.j as isize
    }

    fn set_to(&mut self, s: &str) {
        let start = (self.j_signed() + 1) as usize;
        self.b.truncate(start);
        self.b.extend(s.chars());
        self.k = (self.j_signed() + s.chars().count() as isize) as usize;
    }

    fn r(&mut self, s: &str) {
        if self.j_signed() >= 0 && self.m() > 0 {
            self.set_to(s);
        }
    }

    /// Plurals and -ed / -ing.
    fn step1ab(&mut self) {
        if self.b[self.k] == 's' {
            if self.ends("sses") {
                self.k -= 2;
            } else if self.ends("ies") {
                self.set_to("i");
            } else if self.b[self.k - 1] != 's' {
                self.k -= 1;
            }
        }
        self.b.truncate(self.k + 1);
        if self.ends("eed") {
            if self.j_signed() >= 0 && self.m() > 0 {
                self.k -= 1;
            }
        } else if (self.ends("ed") || self.ends("ing")) && self.j_signed() >= 0 && self.vowel_in_stem() {
            self.k = self.j;
            self.b.truncate(self.k + 1);
            if self.ends("at") {
                self.set_to("ate");
            } else if self.ends("bl") {
                self.set_to("ble");
            } else if self.ends("iz") {
                self.set_to("ize");
            } else if self.double_c(self.k) {
                let ch = self.b[self.k];
                if !matches!(ch, 'l' | 's' | 'z') {
                    self.k -= 1;
                }
            } else {
                self.j = self.k;
                if self.m() == 1 && self.cvc(self.k) {
                    self.set_to("e");
                }
            }
        }
        self.b.truncate(self.k + 1);
    }

    /// Terminal y to i when there is another vowel in the stem.
    fn step1c(&mut self) {
        if self.ends("y") && self.j_signed() >= 0 && self.vowel_in_stem() {
            self.b[self.k] = 'i';
        }
    }

    fn rules(&mut self, rules: &[(&str, &str)]) {
        for (suffix, to) in rules {
            if self.ends(suffix) {
                self.r(to);
                return;
            }
        }
    }

    /// Double suffixes to single ones.
    fn step2(&mut self) {
        if self.k == self.k0 {
            return;
        }
        match self.b[self.k - 1] {
            'a' => self.rules(&[("ational", "ate"), ("tional", "tion")]),
            'c' => self.rules(&[("enci", "ence"), ("anci", "ance")]),
            'e' => self.rules(&[("izer", "ize")]),
            'l' => self.rules(&[("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")]),
            'o' => self.rules(&[("ization", "ize"), ("ation", "ate"), ("ator", "ate")]),
            's' => self.rules(&[("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")]),
            't' => self.rules(&[("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")]),
            'g' => self.rules(&[("logi", "log")]),
            _ => {}
        }
        self.b.truncate(self.k + 1);
    }

    /// -ic-, -full, -ness and the like.
    fn step3(&mut self) {
        match self.b[self.k] {
            'e' => self.rules(&[("icate", "ic"), ("ative", ""), ("alize", "al")]),
            'i' => self.rules(&[("iciti", "ic")]),
            'l' => self.rules(&[("ical", "ic"), ("ful", "")]),
            's' => self.rules(&[("ness", "")]),
            _ => {}
        }
        self.b.truncate(self.k + 1);
    }

    /// -ant, -ence and the like, in context <c>vcvc<v>.
    fn step4(&mut self) {
        if self.k == self.k0 {
            return;
        }
        let found = match self.b[self.k - 1] {
            'a' => self.ends("al"),
            'c' => self.ends("ance") || self.ends("ence"),
            'e' => self.ends("er"),
            'i' => self.ends("ic"),
            'l' => self.ends("able") || self.ends("ible"),
            'n' => self.ends("ant") || self.ends("ement") || self.ends("ment") || self.ends("ent"),
            'o' => (self.ends("ion") && self.j_signed() >= 0 && matches!(self.b[self.j], 's' | 't')) || self.ends("ou"),
            's' => self.ends("ism"),
            't' => self.ends("ate") || self.ends("iti"),
            'u' => self.ends("ous"),
            'v' => self.ends("ive"),
            'z' => self.ends("ize"),
            _ => false,
        };
        if found && self.j_signed() >= 0 && self.m() > 1 {
            self.k = self.j;
            self.b.truncate(self.k + 1);
        }
    }

    /// A final -e, and -ll to -l, when m() > 1.
    fn step5(&mut self) {
        self.j = self.k;
        if self.b[self.k] == 'e' {
            let a = self.m();
            if a > 1 || (a == 1 && !(self.k >= 1 && self.cvc(self.k - 1))) {
                self.k -= 1;
            }
        }
        if self.b[self.k] == 'l' && self.double_c(self.k) && self.m() > 1 {
            self.k -= 1;
        }
        self.b.truncate(self.k + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    /// Expected stems from Lucene 8's `PorterStemFilter` (through Anserini's analyzer).
    #[test]
    fn stems_as_lucene() {
        for (word, want) in [
            ("dry", "dry"),
            ("assembly", "assembl"),
            ("technology", "technolog"),
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("adjustment", "adjust"),
            ("adoption", "adopt"),
            ("controll", "control"),
            ("is", "is"),
            ("oz", "oz"),
        ] {
            assert_eq!(stem(word), want, "{word}");
        }
    }
}
