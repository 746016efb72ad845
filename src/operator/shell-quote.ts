// Why: remote steps are shell command lines (sshd runs them through the login shell), so every
// value spliced into one must be quoted; this is the one quoting rule used for that.

/** Quotes one word for a POSIX shell: safe words stay as they are, others go in single quotes. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Quotes every word and joins them into one command line. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
