/** Removes every known secret from text before it reaches a log line or an error message. */
export type Redact = (text: string) => string;

export function redactor(secrets: () => readonly string[]): Redact {
  return (text) => {
    let out = text;
    for (const secret of secrets()) {
      if (secret.length >= 4) out = out.replaceAll(secret, "[redacted]");
    }
    return out;
  };
}
