/** Connection strings in messages (no `pg` import: the span exporter names its trail with it). */

/** `postgres://user@host:5432/db` without the password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable connection string)';
  }
}
