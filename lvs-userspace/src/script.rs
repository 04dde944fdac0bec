//! Every script lvsd starts — `notify*` and `track_script` (VRRP),
//! MISC_CHECK's `misc_path`, `quorum_up`/`quorum_down` — is started here,
//! by one rule:
//!
//! The line is split into words with shell-like quoting (`'…'` literal,
//! `"…"` with `\"`, `\\`, `\$`, `` \` `` escapes, `\` outside quotes) and
//! executed directly, without a shell, as keepalived does. Only when it
//! contains a shell metacharacter outside quotes (`| & ; < > ( ) $ \` * ?
//! [ ] { } ~` or a newline), has an unterminated quote, or when its first
//! word is neither a path nor a program in `$PATH` (a shell builtin such as
//! `exit`), does it run as `/bin/sh -c 'line'`.
//!
//! So `/etc/keepalived/notify.sh "a b" c` runs notify.sh with two
//! arguments, `a b` and `c`; `/usr/bin/logger up >> /tmp/log` goes through
//! the shell. Callers set stdio, process group, user and timeouts.

use tokio::process::Command;

/// The program and its arguments, or `None` when a shell is needed.
pub fn split_command(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return None,
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return None,
                        },
                        Some('$' | '`') => return None,
                        Some(c) => cur.push(c),
                        None => return None,
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' | ']' | '{'
            | '}' | '~' | '\n' => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    (!words.is_empty()).then_some(words)
}

/// The command for a script line, with `extra` arguments after its own
/// (`notify`'s `INSTANCE name STATE priority`). See the module doc for the
/// rule; through the shell, `extra` become `"$@"` after the line.
pub fn command(line: &str, extra: &[String]) -> Command {
    let mut c = unsecured(line, extra);
    // Every script runs as keepalived's script_user, whatever its kind.
    crate::script_security::apply(&mut c);
    c
}

fn unsecured(line: &str, extra: &[String]) -> Command {
    match split_command(line).filter(|w| w[0].contains('/') || in_path(&w[0])) {
        Some(words) => {
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]).args(extra);
            c
        }
        None => {
            let mut c = Command::new("/bin/sh");
            if extra.is_empty() {
                c.arg("-c").arg(line);
            } else {
                c.arg("-c")
                    .arg(format!("{line} \"$@\""))
                    .arg("sh")
                    .args(extra);
            }
            c
        }
    }
}

/// Starts a script that nobody waits for (notify, quorum_up/quorum_down):
/// stdin on /dev/null, reaped in the background so no zombie is left.
/// Needs a tokio runtime.
pub fn spawn_reaped(line: &str, extra: &[String]) -> std::io::Result<()> {
    let mut child = command(line, extra)
        .stdin(std::process::Stdio::null())
        .spawn()?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(())
}

fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Option<Vec<String>> {
        Some(words.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn split_without_shell() {
        assert_eq!(
            split_command("/bin/check.sh a b"),
            v(&["/bin/check.sh", "a", "b"])
        );
        assert_eq!(
            split_command("/bin/check 'a b' \"c d\" e\\ f"),
            v(&["/bin/check", "a b", "c d", "e f"])
        );
        assert_eq!(split_command("  /bin/true  "), v(&["/bin/true"]));
        assert_eq!(split_command("/bin/x ''"), v(&["/bin/x", ""]));
    }

    #[test]
    fn shell_when_needed() {
        assert_eq!(split_command("/bin/a | /bin/b"), None);
        assert_eq!(split_command("exit $X"), None);
        assert_eq!(split_command("a > /dev/null"), None);
        assert_eq!(split_command("a 'unterminated"), None);
        assert_eq!(split_command("a '$literal'"), v(&["a", "$literal"]));
        assert_eq!(split_command(""), None);
    }

    #[test]
    fn quoted_words_group_as_notify_scripts_expect() {
        assert_eq!(
            split_command(r#"/bin/x.sh "a b" c 'd e'"#),
            v(&["/bin/x.sh", "a b", "c", "d e"])
        );
        assert_eq!(
            split_command("\"/bin/x.sh master\""),
            v(&["/bin/x.sh master"])
        );
        assert_eq!(split_command("  "), None);
    }

    /// The argv a command would run, for the tests.
    fn argv(c: &Command) -> Vec<String> {
        let c = c.as_std();
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn extra_arguments_follow_the_words_or_become_the_shells_positional_ones() {
        let extra = ["INSTANCE".to_string(), "VI_1".to_string()];
        assert_eq!(
            argv(&command("/bin/echo 'a b'", &extra)),
            ["/bin/echo", "a b", "INSTANCE", "VI_1"]
        );
        assert_eq!(
            argv(&command("/bin/echo x > /dev/null", &extra)),
            [
                "/bin/sh",
                "-c",
                "/bin/echo x > /dev/null \"$@\"",
                "sh",
                "INSTANCE",
                "VI_1"
            ]
        );
        assert_eq!(argv(&command("exit 3", &[])), ["/bin/sh", "-c", "exit 3"]);
    }
}
