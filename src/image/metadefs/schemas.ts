// JSON schemas of the metadata definitions API (filled in with the metadefs module).
export function metadefSchemas(): Record<string, unknown> {
  return {};
}
