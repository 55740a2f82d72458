/**
 * Which blobs the metadata store still references (artefacts, storage files, namespace entries of
 * any revision, sealed log segments), for the blob garbage collector. A blob referenced by
 * nothing here may be deleted once older than the retention: anything that puts a blob must
 * reference it within that retention.
 */
export interface BlobReferences {
  /** The subset of digests that something references. Any number of digests; order is irrelevant. */
  referenced(digests: readonly string[]): Promise<Set<string>>;
}
