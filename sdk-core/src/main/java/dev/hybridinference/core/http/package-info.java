/**
 * The HTTP SPI for provider authors: what a provider needs to talk to an OpenAI-compatible server, or to
 * read an OpenAI-style stream that arrives some other way.
 *
 * <ul>
 *   <li>{@link dev.hybridinference.core.http.OpenAiTransport}: chat completions (blocking and streamed),
 *       model listing and plain GETs over OkHttp, with the deadline, cancellation, dead-connection resend
 *       and bounds a provider needs; one per provider, thread-safe.
 *   <li>{@link dev.hybridinference.core.http.RequestHeaders}: the headers of each request (an API key, a
 *       bearer token that refreshes), asked for per request and registered for redaction.
 *   <li>{@link dev.hybridinference.core.http.StreamSplitter} and {@link
 *       dev.hybridinference.core.http.StreamAssembler}: byte chunks split anywhere to SSE or JSON-lines
 *       events, and events to chunks and the final (or partial) result. The transport reads its streams
 *       with them; a provider with its own byte source (an SDK's event stream) uses them the same way.
 *   <li>{@link dev.hybridinference.core.http.OpenAiCodec}: the request body and the blocking completion.
 *   <li>{@link dev.hybridinference.core.http.HttpErrors}: status codes, stream errors, I/O failures and
 *       redirects to {@link dev.hybridinference.core.InferenceException}s, with {@code Retry-After}.
 *   <li>{@link dev.hybridinference.core.http.ResponseLimits}: the bounds on what a server may send.
 * </ul>
 *
 * <p>Supported for provider authors: changes are announced like changes to the API. OkHttp appears only
 * where a caller hands in a client of its own ({@link
 * dev.hybridinference.core.http.OpenAiTransport.Builder#httpClient}).
 */
package dev.hybridinference.core.http;
