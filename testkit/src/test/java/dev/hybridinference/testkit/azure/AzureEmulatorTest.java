package dev.hybridinference.testkit.azure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import com.azure.ai.inference.ChatCompletionsClient;
import com.azure.ai.inference.ChatCompletionsClientBuilder;
import com.azure.ai.inference.models.ChatCompletions;
import com.azure.ai.inference.models.ChatCompletionsOptions;
import com.azure.ai.inference.models.ChatRequestUserMessage;
import com.azure.ai.inference.models.CompletionsFinishReason;
import com.azure.ai.inference.models.CompletionsUsage;
import com.azure.ai.inference.models.ModelInfo;
import com.azure.ai.inference.models.ModelType;
import com.azure.ai.inference.models.StreamingChatChoiceUpdate;
import com.azure.ai.inference.models.StreamingChatCompletionsUpdate;
import com.azure.core.credential.AzureKeyCredential;
import com.azure.core.exception.ClientAuthenticationException;
import com.azure.core.exception.HttpResponseException;
import com.azure.core.exception.ResourceNotFoundException;
import com.azure.core.http.HttpHeaderName;
import com.azure.core.http.netty.NettyAsyncHttpClientBuilder;
import com.azure.core.http.rest.RequestOptions;
import com.azure.core.http.rest.Response;
import com.azure.core.util.BinaryData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.testkit.azure.AzureEmulator.RecordedRequest;
import dev.hybridinference.testkit.azure.AzureEmulator.RetryHeader;
import dev.hybridinference.testkit.internal.GeneratedText;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The emulated Azure endpoint as an HTTPS client sees it, trusting only the emulator's certificate. */
@Timeout(30)
class AzureEmulatorTest {
    static final ObjectMapper MAPPER = new ObjectMapper();
    static final String KEY = "key-5f3c9a71d2";
    static final String V1_CHAT = "/openai/v1/chat/completions";
    static final String INFERENCE_CHAT = "/models/chat/completions?api-version=2024-05-01-preview";

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private Api start(AzureEmulator.Builder builder) {
        AzureEmulator emulator = builder.start();
        toClose.add(emulator);
        return new Api(emulator);
    }

    /** An emulator and a JDK HTTP client (preferring HTTP/2, as by default) that trusts its certificate. */
    static final class Api {
        final AzureEmulator az;
        final HttpClient http;

        Api(AzureEmulator az) {
            this.az = az;
            this.http = HttpClient.newBuilder()
                    .sslContext(az.clientSslContext())
                    .connectTimeout(Duration.ofSeconds(5))
                    .build();
        }

        HttpRequest.Builder request(String pathAndQuery, String... headers) {
            HttpRequest.Builder b =
                    HttpRequest.newBuilder(URI.create(az.url() + pathAndQuery)).timeout(Duration.ofSeconds(20));
            for (int i = 0; i < headers.length; i += 2) {
                b.header(headers[i], headers[i + 1]);
            }
            return b;
        }

        HttpRequest.Builder postRequest(String pathAndQuery, JsonNode body, String... headers) {
            return request(pathAndQuery, headers)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        }

        HttpResponse<String> post(String pathAndQuery, JsonNode body, String... headers) {
            return send(postRequest(pathAndQuery, body, headers).build());
        }

        HttpResponse<String> get(String pathAndQuery, String... headers) {
            return send(request(pathAndQuery, headers).GET().build());
        }

        HttpResponse<String> send(HttpRequest request) {
            try {
                return http.send(request, HttpResponse.BodyHandlers.ofString());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        /** Reads a stream's events as they come, with the time each arrived; stops at the body's end or a failure. */
        Stream stream(String pathAndQuery, JsonNode body, String... headers) throws Exception {
            HttpResponse<InputStream> response = http.send(
                    postRequest(pathAndQuery, body, headers).build(), HttpResponse.BodyHandlers.ofInputStream());
            Stream stream = new Stream(response);
            try (BufferedReader reader =
                    new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    if (line.startsWith("data: ")) {
                        stream.events.add(line.substring("data: ".length()));
                        stream.arrivals.add(System.nanoTime());
                    } else if (!line.isEmpty()) {
                        fail("not an SSE data line: " + line);
                    }
                }
            } catch (IOException e) {
                stream.failure = e;
            }
            return stream;
        }
    }

    static final class Stream {
        final HttpResponse<InputStream> response;
        final List<String> events = new ArrayList<>();
        final List<Long> arrivals = new ArrayList<>();
        IOException failure;

        Stream(HttpResponse<InputStream> response) {
            this.response = response;
        }

        JsonNode json(int i) {
            return readJson(events.get(i));
        }
    }

    static ObjectNode chat(String model, String prompt) {
        ObjectNode body = MAPPER.createObjectNode();
        if (model != null) {
            body.put("model", model);
        }
        body.putArray("messages").addObject().put("role", "user").put("content", prompt);
        return body;
    }

    static JsonNode json(HttpResponse<String> response) {
        return readJson(response.body());
    }

    static JsonNode readJson(String text) {
        try {
            return MAPPER.readTree(text);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + text, e);
        }
    }

    static String content(HttpResponse<String> response) {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return json(response).at("/choices/0/message/content").asText();
    }

    static void assertAllSafe(JsonNode results, String except) {
        for (String category : AzureEmulator.FILTER_CATEGORIES) {
            if (!category.equals(except)) {
                assertThat(results.path(category).path("filtered").asBoolean(true))
                        .as(category)
                        .isFalse();
                assertThat(results.path(category).path("severity").asText())
                        .as(category)
                        .isEqualTo("safe");
            }
        }
    }

    static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out waiting for: " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                fail("interrupted waiting for: " + what);
            }
        }
    }

    // ---- TLS ----

    @Test
    void servesHttp11OverTlsWithACertificateForLoopbackThatOnlyItsClientContextTrusts(@TempDir Path dir)
            throws Exception {
        Api api = start(AzureEmulator.builder());
        assertThat(api.az.url()).matches("https://127\\.0\\.0\\.1:\\d+");
        assertThat(api.az.openAiV1Url()).isEqualTo(api.az.url() + "/openai/v1");
        assertThat(api.az.inferenceUrl()).isEqualTo(api.az.url() + "/models");

        HttpResponse<String> response = api.post(V1_CHAT, chat("gpt-4o-mini", "hello"));
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.version()).isEqualTo(HttpClient.Version.HTTP_1_1);

        X509Certificate cert = api.az.certificate();
        assertThat(cert.getSubjectX500Principal().getName()).contains("CN=localhost");
        List<String> names = cert.getSubjectAlternativeNames().stream()
                .map(san -> String.valueOf(san.get(1)))
                .toList();
        assertThat(names).contains("localhost", "127.0.0.1");
        assertThat(api.az.clientTrustManager().getAcceptedIssuers()).containsExactly(cert);

        Path pem = api.az.writeCertificatePem(dir.resolve("certs"));
        assertThat(pem).isEqualTo(dir.resolve("certs").resolve("azure-emulator.pem"));
        String text = Files.readString(pem);
        assertThat(text).isEqualTo(api.az.certificatePem()).startsWith("-----BEGIN CERTIFICATE-----");
        X509Certificate read = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(text.getBytes(StandardCharsets.US_ASCII)));
        assertThat(read).isEqualTo(cert);

        // A client with the platform's trust store refuses the self-signed certificate.
        HttpClient platform =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        assertThatThrownBy(() -> platform.send(
                        HttpRequest.newBuilder(URI.create(api.az.openAiV1Url() + "/models"))
                                .build(),
                        HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(SSLHandshakeException.class);
        // Another emulator's certificate is another one.
        Api other = start(AzureEmulator.builder());
        assertThat(other.az.certificate()).isNotEqualTo(cert);
    }

    // ---- the v1 route ----

    @Test
    void v1RouteAnswersAnOpenAiChatCompletionWithAzureAnnotationsAndHeaders() {
        Api api = start(AzureEmulator.builder().apiKey(KEY).seed(3));
        ObjectNode body = chat("gpt-4o-mini", "hi there");
        body.put("max_tokens", 5);
        HttpResponse<String> response = api.post(V1_CHAT, body, "api-key", KEY, "X-Trace", "abc");

        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
        String requestId = response.headers().firstValue("apim-request-id").orElseThrow();
        assertThat(UUID.fromString(requestId).toString()).isEqualTo(requestId);
        assertThat(response.headers().firstValue("x-request-id")).hasValue(requestId);
        assertThat(response.headers().firstValue("x-ms-region")).hasValue("East US");
        assertThat(response.headers().firstValue("x-ratelimit-remaining-requests"))
                .hasValue("999");
        assertThat(response.headers().firstValue("x-ratelimit-remaining-tokens"))
                .hasValue(Long.toString(150_000 - 2 - 5));

        JsonNode json = json(response);
        assertThat(json.path("object").asText()).isEqualTo("chat.completion");
        assertThat(json.path("id").asText()).startsWith("chatcmpl-");
        assertThat(json.path("created").asLong()).isPositive();
        assertThat(json.path("model").asText()).isEqualTo("gpt-4o-mini");
        assertThat(json.at("/choices/0/message/role").asText()).isEqualTo("assistant");
        assertThat(json.at("/choices/0/finish_reason").asText()).isEqualTo("length");
        assertThat(json.at("/choices/0/message/content").asText().split(" "))
                .hasSize(5)
                .allSatisfy(w -> assertThat(GeneratedText.WORDS).contains(w));
        assertThat(json.at("/usage/prompt_tokens").asInt()).isEqualTo(2);
        assertThat(json.at("/usage/completion_tokens").asInt()).isEqualTo(5);
        assertThat(json.at("/usage/total_tokens").asInt()).isEqualTo(7);
        assertThat(json.at("/prompt_filter_results/0/prompt_index").asInt(-1)).isZero();
        assertAllSafe(json.at("/prompt_filter_results/0/content_filter_results"), null);
        assertAllSafe(json.at("/choices/0/content_filter_results"), null);

        // Deterministic: the same request answers the same words; another seed others.
        assertThat(content(api.post(V1_CHAT, body, "api-key", KEY)))
                .isEqualTo(json.at("/choices/0/message/content").asText());
        assertThat(content(api.post(V1_CHAT, body.deepCopy().put("seed", 11), "api-key", KEY)))
                .isNotEqualTo(json.at("/choices/0/message/content").asText());
        // Without max_tokens: 16 words, and the model stopped by itself.
        HttpResponse<String> unbounded = api.post(V1_CHAT, chat("gpt-4o-mini", "hi there"), "api-key", KEY);
        assertThat(content(unbounded).split(" ")).hasSize(16);
        assertThat(json(unbounded).at("/choices/0/finish_reason").asText()).isEqualTo("stop");

        // An api-version is not needed, and one that is sent is ignored but recorded.
        assertThat(api.post(V1_CHAT + "?api-version=preview", body, "api-key", KEY)
                        .statusCode())
                .isEqualTo(200);
        List<RecordedRequest> recorded = api.az.recorded();
        assertThat(recorded).hasSize(5);
        assertThat(api.az.requests()).isEqualTo(5);
        RecordedRequest first = recorded.get(0);
        assertThat(first.method()).isEqualTo("POST");
        assertThat(first.path()).isEqualTo(V1_CHAT);
        assertThat(first.query()).isEmpty();
        assertThat(first.header("X-TRACE")).isEqualTo("abc");
        assertThat(first.body()).contains("hi there");
        assertThat(recorded.get(4).query()).isEqualTo("api-version=preview");
        assertThat(recorded.get(4).queryParameter("api-version")).isEqualTo("preview");
    }

    @Test
    void v1RouteListsTheDeploymentsAndNeedsAKnownModel() {
        Api api = start(AzureEmulator.builder().deployment("gpt-4o").deployment("Phi-4"));

        JsonNode models = json(api.get("/openai/v1/models"));
        assertThat(models.path("object").asText()).isEqualTo("list");
        assertThat(models.path("data").findValuesAsText("id")).containsExactly("gpt-4o", "Phi-4");

        HttpResponse<String> unknown = api.post(V1_CHAT, chat("gpt-5", "hi"));
        assertThat(unknown.statusCode()).isEqualTo(404);
        assertThat(json(unknown).at("/error/code").asText()).isEqualTo("DeploymentNotFound");
        assertThat(json(unknown).at("/error/message").asText())
                .startsWith("The API deployment for this resource does not exist");

        HttpResponse<String> noModel = api.post(V1_CHAT, chat(null, "hi"));
        assertThat(noModel.statusCode()).isEqualTo(400);
        assertThat(json(noModel).at("/error/param").asText()).isEqualTo("model");

        assertThat(json(api.post(V1_CHAT, chat("Phi-4", "hi"))).path("model").asText())
                .isEqualTo("Phi-4");
        // The inference route takes no model only from a single-deployment endpoint.
        HttpResponse<String> inferenceNoModel = api.post(INFERENCE_CHAT, chat(null, "hi"));
        assertThat(inferenceNoModel.statusCode()).isEqualTo(400);
        assertThat(json(inferenceNoModel).at("/error/param").asText()).isEqualTo("model");
        assertThat(api.post(INFERENCE_CHAT, chat("gpt-5", "hi")).statusCode()).isEqualTo(404);

        HttpResponse<String> noMessages = api.post(
                V1_CHAT, MAPPER.createObjectNode().put("model", "gpt-4o").set("messages", MAPPER.createArrayNode()));
        assertThat(noMessages.statusCode()).isEqualTo(400);
        assertThat(json(noMessages).at("/error/code").asText()).isEqualTo("BadRequest");
        assertThat(json(noMessages).at("/error/param").asText()).isEqualTo("messages");

        assertThat(api.get("/openai/deployments/gpt-4o/chat/completions").statusCode())
                .isEqualTo(404);
        assertThat(api.get(V1_CHAT).statusCode()).isEqualTo(405);
    }

    @Test
    void v1StreamArrivesChunkByChunkInAzuresOrder() throws Exception {
        int words = 12;
        Duration latency = Duration.ofMillis(100);
        Api api = start(AzureEmulator.builder().tokenLatency(latency));
        ObjectNode body = chat("gpt-4o-mini", "stream me");
        body.put("max_tokens", words).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);

        Stream s = api.stream(V1_CHAT, body);

        assertThat(s.failure).isNull();
        assertThat(s.response.statusCode()).isEqualTo(200);
        assertThat(s.response.headers().firstValue("content-type").orElseThrow())
                .startsWith("text/event-stream");
        assertThat(s.response.headers().firstValue("transfer-encoding")).hasValue("chunked");
        assertThat(s.response.headers().firstValue("x-ratelimit-remaining-requests"))
                .isPresent();
        // filter results, role, one per word, finish, usage, [DONE]
        assertThat(s.events).hasSize(1 + 1 + words + 1 + 1 + 1);
        JsonNode filters = s.json(0);
        assertThat(filters.path("choices").isArray() && filters.path("choices").isEmpty())
                .isTrue();
        assertThat(filters.path("id").asText()).isEmpty();
        assertAllSafe(filters.at("/prompt_filter_results/0/content_filter_results"), null);
        JsonNode role = s.json(1);
        assertThat(role.path("object").asText()).isEqualTo("chat.completion.chunk");
        assertThat(role.at("/choices/0/delta/role").asText()).isEqualTo("assistant");
        StringBuilder text = new StringBuilder();
        for (int i = 2; i < 2 + words; i++) {
            JsonNode chunk = s.json(i);
            assertThat(chunk.path("id").asText()).isEqualTo(role.path("id").asText());
            assertThat(chunk.at("/choices/0/finish_reason").isNull()).isTrue();
            assertAllSafe(chunk.at("/choices/0/content_filter_results"), null);
            text.append(chunk.at("/choices/0/delta/content").asText());
        }
        assertThat(text.toString().split(" ")).hasSize(words);
        JsonNode finish = s.json(2 + words);
        assertThat(finish.at("/choices/0/finish_reason").asText()).isEqualTo("length");
        assertThat(finish.at("/choices/0/delta").isEmpty()).isTrue();
        JsonNode usage = s.json(3 + words);
        assertThat(usage.path("choices").isEmpty()).isTrue();
        assertThat(usage.at("/usage/prompt_tokens").asInt()).isEqualTo(2);
        assertThat(usage.at("/usage/completion_tokens").asInt()).isEqualTo(words);
        assertThat(s.events.get(s.events.size() - 1)).isEqualTo("[DONE]");

        // Written as made: the server waits the token latency before each word after the first word's chunk
        // is sent, so the first word is read long before the end (a buffered body would arrive all at once).
        long spread = s.arrivals.get(s.arrivals.size() - 1) - s.arrivals.get(2);
        assertThat(Duration.ofNanos(spread))
                .isGreaterThanOrEqualTo(latency.multipliedBy(words - 1).dividedBy(2));

        // Without include_usage there is no usage chunk.
        body.remove("stream_options");
        Stream plain = api.stream(V1_CHAT, body.put("max_tokens", 2));
        assertThat(plain.events).hasSize(1 + 1 + 2 + 1 + 1);
        assertThat(plain.json(4).at("/choices/0/finish_reason").asText()).isEqualTo("length");
    }

    // ---- the inference routes ----

    @Test
    void inferenceRoutesServeTheSingleDeploymentWithAndWithoutTheModelsPrefix() {
        Api api = start(AzureEmulator.builder().deployment("Meta-Llama-3.1-8B-Instruct"));

        HttpResponse<String> models = api.post(INFERENCE_CHAT, chat(null, "one two three"));
        assertThat(models.statusCode()).as(models.body()).isEqualTo(200);
        assertThat(json(models).path("model").asText()).isEqualTo("Meta-Llama-3.1-8B-Instruct");
        assertThat(json(models).at("/usage/prompt_tokens").asInt()).isEqualTo(3);
        HttpResponse<String> root =
                api.post("/chat/completions?api-version=2024-08-01-preview", chat(null, "one two three"));
        assertThat(content(root)).isEqualTo(content(models));

        for (String info :
                List.of("/models/info?api-version=2024-05-01-preview", "/info?api-version=2024-08-01-preview")) {
            HttpResponse<String> response = api.get(info);
            assertThat(response.statusCode()).isEqualTo(200);
            JsonNode json = json(response);
            assertThat(json.path("model_name").asText()).isEqualTo("Meta-Llama-3.1-8B-Instruct");
            assertThat(json.path("model_type").asText()).isEqualTo("chat_completion");
            assertThat(json.path("model_provider_name").asText()).isEqualTo("Meta");
        }
    }

    @Test
    void inferenceRoutesRefuseAMissingOrUnknownApiVersion() {
        Api api = start(AzureEmulator.builder());

        HttpResponse<String> missing = api.post("/models/chat/completions", chat(null, "hi"));
        assertThat(missing.statusCode()).isEqualTo(400);
        assertThat(json(missing).at("/error/code").asText()).isEqualTo("BadRequest");
        assertThat(json(missing).at("/error/message").asText()).contains("api-version");
        assertThat(missing.headers().firstValue("apim-request-id")).isPresent();

        HttpResponse<String> unknown = api.post("/models/chat/completions?api-version=2023-05-15", chat(null, "hi"));
        assertThat(unknown.statusCode()).isEqualTo(400);
        assertThat(json(unknown).at("/error/code").asText()).isEqualTo("BadRequest");
        assertThat(json(unknown).at("/error/message").asText()).contains("2023-05-15");
        assertThat(api.get("/info?api-version=2023-05-15").statusCode()).isEqualTo(400);
        assertThat(api.post("/chat/completions", chat(null, "hi")).statusCode()).isEqualTo(400);
    }

    @Test
    void inferenceRouteHandlesExtraParametersAsTheHeaderSays() {
        Api api = start(AzureEmulator.builder());
        ObjectNode body = chat(null, "hi");
        body.put("top_k", 5).put("safe_prompt", true).put("temperature", 0.2);

        for (String[] header : List.of(new String[0], new String[] {"extra-parameters", "error"})) {
            HttpResponse<String> refused = api.post(INFERENCE_CHAT, body, header);
            assertThat(refused.statusCode()).isEqualTo(400);
            JsonNode error = json(refused).path("error");
            assertThat(error.path("code").asText()).isEqualTo("Invalid input");
            assertThat(error.path("message").asText())
                    .contains("top_k")
                    .contains("safe_prompt")
                    .doesNotContain("temperature");
            assertThat(error.path("details").findValuesAsText("type")).containsOnly("extra_forbidden");
        }
        assertThat(api.post(INFERENCE_CHAT, body, "extra-parameters", "drop").statusCode())
                .isEqualTo(200);
        assertThat(api.post(INFERENCE_CHAT, body, "extra-parameters", "pass-through")
                        .statusCode())
                .isEqualTo(200);
        RecordedRequest passed = api.az.recorded().get(3);
        assertThat(passed.header("extra-parameters")).isEqualTo("pass-through");
        assertThat(readJson(passed.body()).path("top_k").asInt()).isEqualTo(5);
        assertThat(passed.extraParameters()).containsExactly("top_k", "safe_prompt");
        assertThat(api.az.recorded().get(2).header("extra-parameters")).isEqualTo("drop");

        HttpResponse<String> bogus = api.post(INFERENCE_CHAT, body, "extra-parameters", "sometimes");
        assertThat(bogus.statusCode()).isEqualTo(400);
        assertThat(json(bogus).at("/error/message").asText()).contains("extra-parameters");

        // The v1 route takes unknown fields as they are.
        assertThat(api.post(V1_CHAT, body.deepCopy().put("model", "gpt-4o-mini"))
                        .statusCode())
                .isEqualTo(200);
    }

    @Test
    void inferenceStreamsCarryUsageOnlyWhenAskedOrConfigured() throws Exception {
        ObjectNode body = chat(null, "count me");
        body.put("max_tokens", 3).put("stream", true);

        Api plain = start(AzureEmulator.builder());
        Stream without = plain.stream(INFERENCE_CHAT, body);
        assertThat(without.events).hasSize(1 + 1 + 3 + 1 + 1);
        assertThat(without.events).noneMatch(e -> e.contains("\"usage\""));

        Stream asked = plain.stream(
                INFERENCE_CHAT,
                body.deepCopy().set("stream_options", MAPPER.createObjectNode().put("include_usage", true)));
        assertThat(asked.json(6).at("/usage/completion_tokens").asInt()).isEqualTo(3);

        Api always = start(AzureEmulator.builder().usageInStreams(true));
        Stream with = always.stream(INFERENCE_CHAT, body);
        assertThat(with.events).hasSize(1 + 1 + 3 + 1 + 1 + 1);
        JsonNode usage = with.json(6);
        assertThat(usage.path("choices").isEmpty()).isTrue();
        assertThat(usage.at("/usage/prompt_tokens").asInt()).isEqualTo(2);
        assertThat(usage.at("/usage/completion_tokens").asInt()).isEqualTo(3);
        assertThat(with.events.get(7)).isEqualTo("[DONE]");
    }

    // ---- auth ----

    @Test
    void credentialsAreCheckedOnEveryRouteWithoutEverRepeatingTheKey() {
        Api api = start(AzureEmulator.builder().apiKey(KEY).bearerToken("token-one"));
        ObjectNode v1 = chat("gpt-4o-mini", "hi");
        ObjectNode inference = chat(null, "hi");

        HttpResponse<String> none = api.post(V1_CHAT, v1);
        assertThat(none.statusCode()).isEqualTo(401);
        assertThat(json(none).at("/error/code").asText()).isEqualTo("401");
        assertThat(json(none).at("/error/message").asText())
                .startsWith("Access denied due to invalid subscription key or wrong API endpoint.");
        HttpResponse<String> wrong = api.post(INFERENCE_CHAT, inference, "api-key", "not-the-key");
        assertThat(wrong.statusCode()).isEqualTo(401);
        assertThat(wrong.body()).doesNotContain("not-the-key").doesNotContain(KEY);
        assertThat(wrong.headers().firstValue("apim-request-id")).isPresent();
        assertThat(api.get("/openai/v1/models").statusCode()).isEqualTo(401);
        assertThat(api.get("/models/info?api-version=2024-05-01-preview").statusCode())
                .isEqualTo(401);

        assertThat(api.post(V1_CHAT, v1, "api-key", KEY).statusCode()).isEqualTo(200);
        assertThat(api.post(INFERENCE_CHAT, inference, "api-key", KEY).statusCode())
                .isEqualTo(200);
        assertThat(api.post(V1_CHAT, v1, "Authorization", "Bearer token-one").statusCode())
                .isEqualTo(200);
        assertThat(api.post(INFERENCE_CHAT, inference, "Authorization", "Bearer token-one")
                        .statusCode())
                .isEqualTo(200);
        // The raw key in Authorization, as the inference SDK's key credential sends it: only on that route.
        assertThat(api.post(INFERENCE_CHAT, inference, "Authorization", KEY).statusCode())
                .isEqualTo(200);
        assertThat(api.post("/chat/completions?api-version=2024-05-01-preview", inference, "Authorization", KEY)
                        .statusCode())
                .isEqualTo(200);
        assertThat(api.post(V1_CHAT, v1, "Authorization", KEY).statusCode()).isEqualTo(401);
        // The key as a bearer token, as OpenAI's SDKs send it to the v1 route.
        assertThat(api.post(V1_CHAT, v1, "Authorization", "Bearer " + KEY).statusCode())
                .isEqualTo(200);

        HttpResponse<String> badToken = api.post(V1_CHAT, v1, "Authorization", "Bearer token-two");
        assertThat(badToken.statusCode()).isEqualTo(401);
        assertThat(json(badToken).at("/error/code").asText()).isEqualTo("invalid_token");
        assertThat(json(badToken).at("/error/message").asText()).contains("expired");
        assertThat(badToken.body()).doesNotContain("token-two");

        api.az.acceptBearerToken("token-two");
        assertThat(api.post(V1_CHAT, v1, "Authorization", "Bearer token-two").statusCode())
                .isEqualTo(200);
        api.az.revokeBearerToken("token-one");
        HttpResponse<String> revoked = api.post(INFERENCE_CHAT, inference, "Authorization", "Bearer token-one");
        assertThat(revoked.statusCode()).isEqualTo(401);
        assertThat(json(revoked).at("/error/code").asText()).isEqualTo("invalid_token");

        assertThat(api.az.toString())
                .contains(api.az.url())
                .doesNotContain(KEY)
                .doesNotContain("token-one")
                .doesNotContain("token-two");
        assertThat(api.az.recorded().get(0).header("api-key")).isNull();
        assertThat(api.az.recorded().get(1).header("api-key")).isEqualTo("not-the-key");
        assertThat(api.az.recorded().toString())
                .doesNotContain(KEY)
                .doesNotContain("token-one")
                .doesNotContain("not-the-key");
    }

    @Test
    void anEndpointWithoutCredentialsChecksNothingUntilATokenIsAccepted() {
        Api api = start(AzureEmulator.builder());
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(200);
        assertThat(api.post(INFERENCE_CHAT, chat(null, "hi"), "api-key", "anything")
                        .statusCode())
                .isEqualTo(200);

        api.az.acceptBearerToken("late-token");
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(401);
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi"), "Authorization", "Bearer late-token")
                        .statusCode())
                .isEqualTo(200);
    }

    // ---- limits and filters ----

    @Test
    void promptAndMaxTokensOverTheContextWindowAreRefused() {
        Api api = start(AzureEmulator.builder().contextWindow(10));
        ObjectNode body = chat("gpt-4o-mini", "one two three four");

        HttpResponse<String> over = api.post(V1_CHAT, body.deepCopy().put("max_tokens", 7));
        assertThat(over.statusCode()).isEqualTo(400);
        JsonNode error = json(over).path("error");
        assertThat(error.path("code").asText()).isEqualTo("context_length_exceeded");
        assertThat(error.path("message").asText())
                .startsWith("This model's maximum context length is 10 tokens. However, you requested 11 tokens");
        assertThat(api.post(INFERENCE_CHAT, body.deepCopy().put("max_tokens", 7))
                        .statusCode())
                .isEqualTo(400);
        assertThat(api.post(V1_CHAT, body.deepCopy().put("max_completion_tokens", 7))
                        .statusCode())
                .isEqualTo(400);

        assertThat(content(api.post(V1_CHAT, body.deepCopy().put("max_tokens", 6)))
                        .split(" "))
                .hasSize(6);
    }

    @Test
    void aFilteredPromptIsRefusedWithAzuresContentFilterError() throws Exception {
        Api api = start(AzureEmulator.builder());
        api.az.filterPromptNext("violence");

        HttpResponse<String> refused = api.post(V1_CHAT, chat("gpt-4o-mini", "something"));
        assertThat(refused.statusCode()).isEqualTo(400);
        JsonNode error = json(refused).path("error");
        assertThat(error.path("code").asText()).isEqualTo("content_filter");
        assertThat(error.path("param").asText()).isEqualTo("prompt");
        assertThat(error.path("status").asInt()).isEqualTo(400);
        assertThat(error.path("message").asText())
                .startsWith("The response was filtered due to the prompt triggering Azure OpenAI's content management"
                        + " policy.");
        assertThat(error.at("/innererror/code").asText()).isEqualTo("ResponsibleAIPolicyViolation");
        JsonNode result = error.at("/innererror/content_filter_result");
        assertThat(result.at("/violence/filtered").asBoolean()).isTrue();
        assertThat(result.at("/violence/severity").asText()).isEqualTo("high");
        assertAllSafe(result, "violence");

        // Only the next request: the one after is answered.
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "something")).statusCode())
                .isEqualTo(200);
        // A streamed request is refused the same way, before any event.
        api.az.filterPromptNext("hate");
        ObjectNode streamed = chat(null, "something");
        streamed.put("stream", true);
        HttpResponse<String> refusedStream = api.post(INFERENCE_CHAT, streamed);
        assertThat(refusedStream.statusCode()).isEqualTo(400);
        assertThat(refusedStream.headers().firstValue("content-type")).hasValue("application/json");
        assertThat(json(refusedStream)
                        .at("/error/innererror/content_filter_result/hate/filtered")
                        .asBoolean())
                .isTrue();
        assertThatThrownBy(() -> api.az.filterPromptNext("rudeness"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("rudeness")
                .hasMessageContaining("self_harm");
    }

    @Test
    void aFilteredAnswerStopsAfterItsWordsWithFinishReasonContentFilter() throws Exception {
        Api api = start(AzureEmulator.builder());
        api.az.filterAnswerNext("sexual", 3);

        HttpResponse<String> blocking =
                api.post(V1_CHAT, chat("gpt-4o-mini", "tell a story").put("max_tokens", 20));
        assertThat(blocking.statusCode()).isEqualTo(200);
        JsonNode json = json(blocking);
        assertThat(json.at("/choices/0/message/content").asText().split(" ")).hasSize(3);
        assertThat(json.at("/choices/0/finish_reason").asText()).isEqualTo("content_filter");
        JsonNode results = json.at("/choices/0/content_filter_results");
        assertThat(results.at("/sexual/filtered").asBoolean()).isTrue();
        assertThat(results.at("/sexual/severity").asText()).isEqualTo("medium");
        assertAllSafe(results, "sexual");
        assertThat(json.at("/usage/completion_tokens").asInt()).isEqualTo(3);
        assertAllSafe(json.at("/prompt_filter_results/0/content_filter_results"), null);

        api.az.filterAnswerNext("self_harm", 2);
        ObjectNode body =
                chat("gpt-4o-mini", "tell a story").put("max_tokens", 20).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        Stream s = api.stream(V1_CHAT, body);
        // filter results, role, 2 words, the filter's finish, usage, [DONE]
        assertThat(s.events).hasSize(7);
        assertThat(s.json(2).at("/choices/0/delta/content").asText()).isNotBlank();
        assertThat(s.json(3).at("/choices/0/delta/content").asText()).isNotBlank();
        JsonNode finish = s.json(4);
        assertThat(finish.at("/choices/0/delta").isObject()
                        && finish.at("/choices/0/delta").isEmpty())
                .isTrue();
        assertThat(finish.at("/choices/0/finish_reason").asText()).isEqualTo("content_filter");
        assertThat(finish.at("/choices/0/content_filter_results/self_harm/filtered")
                        .asBoolean())
                .isTrue();
        assertThat(finish.at("/choices/0/content_filter_results/self_harm/severity")
                        .asText())
                .isEqualTo("medium");
        assertThat(s.json(5).at("/usage/completion_tokens").asInt()).isEqualTo(2);
        assertThat(s.events.get(6)).isEqualTo("[DONE]");
    }

    // ---- scripts ----

    @Test
    void scriptedAnswersToolCallsAndJsonOutput() throws Exception {
        Api api = start(AzureEmulator.builder().apiKey(KEY));
        api.az.answerNext("Scripted answer here.");
        // A refused request leaves the scripts queued.
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(401);
        HttpResponse<String> scripted =
                api.post(V1_CHAT, chat("gpt-4o-mini", "hi").put("max_tokens", 1), "api-key", KEY);
        assertThat(content(scripted)).isEqualTo("Scripted answer here.");
        assertThat(json(scripted).at("/choices/0/finish_reason").asText()).isEqualTo("stop");
        assertThat(json(scripted).at("/usage/completion_tokens").asInt()).isEqualTo(3);

        ObjectNode withTools = chat(null, "weather?");
        withTools
                .putArray("tools")
                .addObject()
                .put("type", "function")
                .putObject("function")
                .put("name", "get_weather");
        api.az.answerNextWithToolCall("get_weather", "{\"city\":\"Paris\"}");
        HttpResponse<String> call = api.post(INFERENCE_CHAT, withTools, "api-key", KEY);
        assertThat(call.statusCode()).as(call.body()).isEqualTo(200);
        JsonNode message = json(call).at("/choices/0/message");
        assertThat(message.path("content").isNull()).isTrue();
        assertThat(message.at("/tool_calls/0/type").asText()).isEqualTo("function");
        assertThat(message.at("/tool_calls/0/id").asText()).startsWith("call_");
        assertThat(message.at("/tool_calls/0/function/name").asText()).isEqualTo("get_weather");
        assertThat(message.at("/tool_calls/0/function/arguments").asText()).isEqualTo("{\"city\":\"Paris\"}");
        assertThat(json(call).at("/choices/0/finish_reason").asText()).isEqualTo("tool_calls");

        api.az.answerNextWithToolCall("get_weather", "{\"city\":\"Oslo\"}");
        Stream streamed = api.stream(INFERENCE_CHAT, withTools.deepCopy().put("stream", true), "api-key", KEY);
        StringBuilder args = new StringBuilder();
        for (int i = 2; i < 4; i++) {
            args.append(streamed.json(i)
                    .at("/choices/0/delta/tool_calls/0/function/arguments")
                    .asText());
        }
        assertThat(streamed.json(2)
                        .at("/choices/0/delta/tool_calls/0/function/name")
                        .asText())
                .isEqualTo("get_weather");
        assertThat(args.toString()).isEqualTo("{\"city\":\"Oslo\"}");
        assertThat(streamed.json(4).at("/choices/0/finish_reason").asText()).isEqualTo("tool_calls");

        ObjectNode jsonObject = chat("gpt-4o-mini", "as json");
        jsonObject.putObject("response_format").put("type", "json_object");
        JsonNode answer = readJson(content(api.post(V1_CHAT, jsonObject, "api-key", KEY)));
        assertThat(answer.isObject()).isTrue();
        assertThat(answer.path("answer").asText()).isNotBlank();

        ObjectNode jsonSchema = chat("gpt-4o-mini", "as json");
        ObjectNode schema = jsonSchema
                .putObject("response_format")
                .put("type", "json_schema")
                .putObject("json_schema")
                .put("name", "city")
                .putObject("schema");
        schema.put("type", "object");
        ObjectNode properties = schema.putObject("properties");
        properties.putObject("name").put("type", "string");
        properties.putObject("population").put("type", "integer");
        JsonNode structured = readJson(content(api.post(V1_CHAT, jsonSchema, "api-key", KEY)));
        assertThat(structured.path("name").isTextual()).isTrue();
        assertThat(structured.path("population").isIntegralNumber()).isTrue();
    }

    @Test
    void rateLimitsNameTheWaitInExactlyTheScriptedHeader() {
        Api api = start(AzureEmulator.builder());
        for (RetryHeader header : RetryHeader.values()) {
            api.az.rateLimitNext(header, Duration.ofMillis(1500));
            HttpResponse<String> limited = api.post(V1_CHAT, chat("gpt-4o-mini", "hi"));

            assertThat(limited.statusCode()).isEqualTo(429);
            assertThat(json(limited).at("/error/code").asText()).isEqualTo("429");
            assertThat(json(limited).at("/error/message").asText())
                    .startsWith("Requests to the ChatCompletions_Create Operation have exceeded call rate limit")
                    .contains("retry after 2 seconds");
            assertThat(limited.headers().firstValue("x-ratelimit-remaining-requests"))
                    .hasValue("0");
            assertThat(limited.headers().firstValue("x-ms-region")).hasValue("East US");
            String expected = header == RetryHeader.RETRY_AFTER ? "2" : "1500";
            for (RetryHeader h : RetryHeader.values()) {
                if (h == header) {
                    assertThat(limited.headers().firstValue(h.headerName())).hasValue(expected);
                } else {
                    assertThat(limited.headers().firstValue(h.headerName()))
                            .as(h.headerName())
                            .isEmpty();
                }
            }
        }
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(200);

        api.az.failNext(503, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"busy\"}}");
        HttpResponse<String> failed = api.post(INFERENCE_CHAT, chat(null, "hi"));
        assertThat(failed.statusCode()).isEqualTo(503);
        assertThat(json(failed).at("/error/code").asText()).isEqualTo("ServiceUnavailable");
        assertThat(failed.headers().firstValue("apim-request-id")).isPresent();
    }

    @Test
    void aStalledRequestIsHeldUntilItsClientLeaves() throws Exception {
        Api api = start(AzureEmulator.builder());
        api.az.stallNext();
        byte[] body = chat("gpt-4o-mini", "hi").toString().getBytes(StandardCharsets.UTF_8);
        URI uri = URI.create(api.az.url());
        try (SSLSocket socket =
                (SSLSocket) api.az.clientSslContext().getSocketFactory().createSocket(uri.getHost(), uri.getPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST " + V1_CHAT + " HTTP/1.1\r\nHost: " + uri.getAuthority()
                            + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            await("the stall", () -> api.az.stalledNow() == 1);
            assertThat(api.az.stallsStarted()).isEqualTo(1);
            assertThat(api.az.disconnects()).isZero();
        }
        await("the client's leaving", () -> api.az.disconnects() == 1 && api.az.stalledNow() == 0);
        assertThat(api.az.stallsStarted()).isEqualTo(1);
        // The next request is served again.
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(200);
    }

    @Test
    void aCutStreamEndsWithoutItsFinishOrDoneAndACutAnswerShort() throws Exception {
        Api api = start(AzureEmulator.builder());
        api.az.cutNextAfter(2);
        ObjectNode body = chat("gpt-4o-mini", "hi").put("max_tokens", 6).put("stream", true);

        Stream s = api.stream(V1_CHAT, body);
        assertThat(s.failure).isNotNull();
        assertThat(s.events).hasSize(4); // filter results, role, two words
        assertThat(s.json(3).at("/choices/0/delta/content").asText()).isNotBlank();
        assertThat(s.events).noneMatch(e -> e.contains("finish_reason\":\"") || e.equals("[DONE]"));

        api.az.cutNextAfter(0);
        assertThatThrownBy(() -> api.send(
                        api.postRequest(V1_CHAT, chat("gpt-4o-mini", "hi")).build()))
                .isInstanceOf(UncheckedIOException.class);
        assertThat(api.post(V1_CHAT, chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(200);
    }

    // ---- Azure's own SDK ----

    /** Azure's default (netty) HTTP client, trusting the emulator's certificate. */
    private static com.azure.core.http.HttpClient sdkHttpClient(AzureEmulator az) throws SSLException {
        SslContext tls = SslContextBuilder.forClient()
                .trustManager(az.clientTrustManager())
                .build();
        return new NettyAsyncHttpClientBuilder(
                        reactor.netty.http.client.HttpClient.create().secure(spec -> spec.sslContext(tls)))
                .build();
    }

    @Test
    void theAzureAiInferenceSdkWorksAgainstTheInferenceRoute() throws Exception {
        Api api = start(AzureEmulator.builder().apiKey(KEY).usageInStreams(true));
        com.azure.core.http.HttpClient http = sdkHttpClient(api.az);
        ChatCompletionsClient client = new ChatCompletionsClientBuilder()
                .endpoint(api.az.inferenceUrl())
                .credential(new AzureKeyCredential(KEY))
                .httpClient(http)
                .buildClient();

        api.az.answerNext("Hello from the emulator.");
        ChatCompletions done =
                client.complete(new ChatCompletionsOptions(List.of(new ChatRequestUserMessage("hi there"))));
        assertThat(done.getChoice().getMessage().getContent()).isEqualTo("Hello from the emulator.");
        assertThat(done.getChoice().getFinishReason()).isEqualTo(CompletionsFinishReason.STOPPED);
        assertThat(done.getModel()).isEqualTo("gpt-4o-mini");
        assertThat(done.getUsage().getPromptTokens()).isEqualTo(2);
        assertThat(done.getUsage().getCompletionTokens()).isEqualTo(4);
        RecordedRequest sent = api.az.recorded().get(0);
        assertThat(sent.path()).isEqualTo("/models/chat/completions");
        assertThat(sent.queryParameter("api-version")).isEqualTo("2024-05-01-preview");
        assertThat(sent.header("api-key")).isEqualTo(KEY);
        assertThat(sent.header("authorization")).isEqualTo(KEY);

        StringBuilder text = new StringBuilder();
        List<CompletionsFinishReason> finishes = new ArrayList<>();
        List<CompletionsUsage> usages = new ArrayList<>();
        ChatCompletionsOptions streamed =
                new ChatCompletionsOptions(List.of(new ChatRequestUserMessage("stream please"))).setMaxTokens(4);
        for (StreamingChatCompletionsUpdate update : client.completeStream(streamed)) {
            for (StreamingChatChoiceUpdate choice : update.getChoices()) {
                if (choice.getDelta() != null && choice.getDelta().getContent() != null) {
                    text.append(choice.getDelta().getContent());
                }
                if (choice.getFinishReason() != null) {
                    finishes.add(choice.getFinishReason());
                }
            }
            if (update.getUsage() != null) {
                usages.add(update.getUsage());
            }
        }
        assertThat(text.toString().split(" ")).hasSize(4);
        assertThat(finishes).containsExactly(CompletionsFinishReason.TOKEN_LIMIT_REACHED);
        assertThat(usages).hasSize(1);
        assertThat(usages.get(0).getCompletionTokens()).isEqualTo(4);

        ModelInfo info = client.getModelInfo();
        assertThat(info.getModelName()).isEqualTo("gpt-4o-mini");
        assertThat(info.getModelType()).isEqualTo(ModelType.CHAT_COMPLETION);
        assertThat(info.getModelProviderName()).isEqualTo("OpenAI");

        // Extra parameters go through completeWithResponse with the header set.
        String withTopK = chat(null, "hi").put("top_k", 3).toString();
        Response<BinaryData> passed = client.completeWithResponse(
                BinaryData.fromString(withTopK),
                new RequestOptions().setHeader(HttpHeaderName.fromString("extra-parameters"), "pass-through"));
        assertThat(passed.getStatusCode()).isEqualTo(200);
        assertThatThrownBy(() -> client.completeWithResponse(BinaryData.fromString(withTopK), new RequestOptions()))
                .isInstanceOfSatisfying(
                        HttpResponseException.class,
                        e -> assertThat(e.getResponse().getStatusCode()).isEqualTo(400));

        ChatCompletionsOptions unknown =
                new ChatCompletionsOptions(List.of(new ChatRequestUserMessage("hi"))).setModel("gpt-5");
        assertThatThrownBy(() -> client.complete(unknown)).isInstanceOf(ResourceNotFoundException.class);

        ChatCompletionsClient wrongKey = new ChatCompletionsClientBuilder()
                .endpoint(api.az.inferenceUrl())
                .credential(new AzureKeyCredential("not-the-key"))
                .httpClient(http)
                .buildClient();
        assertThatThrownBy(() -> wrongKey.complete("hi"))
                .isInstanceOf(ClientAuthenticationException.class)
                .hasMessageNotContaining("not-the-key")
                .hasMessageNotContaining(KEY);
    }

    @Test
    void builderRefusesWhatCannotWork() {
        assertThatThrownBy(() -> AzureEmulator.builder().apiKey(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("apiKey");
        assertThatThrownBy(() -> AzureEmulator.builder().deployment("a").deployment("a"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'a'");
        assertThatThrownBy(() -> AzureEmulator.builder().contextWindow(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("contextWindow");
        assertThatThrownBy(() -> AzureEmulator.builder().tokenLatency(Duration.ofMillis(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenLatency");
        Api api = start(AzureEmulator.builder());
        assertThatThrownBy(() -> api.az.filterAnswerNext("hate", -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("afterWords");
        assertThatThrownBy(() -> api.az.failNext(99, "{}")).isInstanceOf(IllegalArgumentException.class);
    }
}
