package dev.hybridinference.core.http;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ContentFilteredException;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceTimeoutException;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class HttpErrorsTest {
    private static final Function<String, String> NO_HEADERS = name -> null;

    private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-27T10:00:00Z"), ZoneOffset.UTC);
    private static final String NESTED =
            "{\"error\":{\"message\":\"%s\",\"type\":\"BadRequestError\",\"param\":null,\"code\":%d}}";
    private static final String FLAT =
            "{\"object\":\"error\",\"message\":\"%s\",\"type\":\"BadRequestError\",\"param\":null,\"code\":%d}";

    static Stream<Arguments> statuses() {
        return Stream.of(
                Arguments.of(400, InvalidRequestException.class, false),
                Arguments.of(401, AuthenticationException.class, false),
                Arguments.of(403, AuthenticationException.class, false),
                Arguments.of(404, InvalidRequestException.class, false),
                Arguments.of(408, InferenceTimeoutException.class, true),
                Arguments.of(422, InvalidRequestException.class, false),
                Arguments.of(429, RateLimitedException.class, true),
                Arguments.of(500, ProviderUnavailableException.class, true),
                Arguments.of(502, ProviderUnavailableException.class, true),
                Arguments.of(503, ProviderUnavailableException.class, true),
                Arguments.of(504, ProviderUnavailableException.class, true));
    }

    @ParameterizedTest(name = "HTTP {0} -> {1}")
    @MethodSource("statuses")
    void eachStatusMapsToItsExceptionInBothBodyShapes(int status, Class<?> type, boolean retryable) {
        for (String shape : new String[] {NESTED, FLAT}) {
            InferenceException e = HttpErrors.forStatus(
                    "p", "http://h:8000", status, NO_HEADERS, String.format(shape, "went wrong", status), CLOCK);
            assertThat(e).isInstanceOf(type);
            assertThat(e.isRetryable()).isEqualTo(retryable);
            assertThat(e.getMessage()).startsWith("p (http://h:8000): ").contains("went wrong");
        }
    }

    @Test
    void contextOverflowIsItsOwnType() {
        String msg = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens";
        InferenceException e = HttpErrors.forStatus("p", "e", 400, NO_HEADERS, String.format(NESTED, msg, 400), CLOCK);
        assertThat(e).isInstanceOf(ContextLengthExceededException.class);
        assertThat(e.isRetryable()).isFalse();
    }

    @Test
    void contentFilterIsItsOwnType() {
        String body = "{\"error\":{\"message\":\"filtered\",\"code\":\"content_filter\"}}";
        assertThat(HttpErrors.forStatus("p", "e", 400, NO_HEADERS, body, CLOCK))
                .isInstanceOf(ContentFilteredException.class);
    }

    @Test
    void azuresFilteredPromptSaysWhatWasFiltered() {
        String body = "{\"error\":{\"code\":\"content_filter\",\"message\":\"The response was filtered\","
                + "\"param\":\"prompt\",\"status\":400,\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\","
                + "\"content_filter_result\":{\"hate\":{\"filtered\":true,\"severity\":\"high\"},"
                + "\"violence\":{\"filtered\":false,\"severity\":\"safe\"},"
                + "\"jailbreak\":{\"filtered\":true,\"detected\":true}}}}}";
        ContentFilteredException e =
                (ContentFilteredException) HttpErrors.forStatus("p", "e", 400, NO_HEADERS, body, CLOCK);
        assertThat(e.stage()).isEqualTo(ContentFilteredException.Stage.PROMPT);
        assertThat(e.filtered()).contains("hate (high), jailbreak");
        assertThat(e).hasMessageContaining("The response was filtered").hasMessageContaining("hate (high)");
    }

    @Test
    void stringAndTextBodiesKeepTheirMessage() {
        assertThat(HttpErrors.forStatus("p", "e", 401, NO_HEADERS, "{\"error\":\"Unauthorized\"}", CLOCK))
                .isInstanceOf(AuthenticationException.class)
                .hasMessageContaining("Unauthorized");
        assertThat(HttpErrors.forStatus("p", "e", 502, NO_HEADERS, "<html>bad gateway</html>", CLOCK))
                .hasMessageContaining("<html>bad gateway</html>");
        assertThat(HttpErrors.forStatus("p", "e", 503, NO_HEADERS, "", CLOCK))
                .hasMessageContaining("service unavailable");
        assertThat(HttpErrors.forStatus("p", "e", 500, NO_HEADERS, "x".repeat(5000), CLOCK)
                        .getMessage()
                        .length())
                .isLessThan(400);
    }

    /** A case-insensitive header lookup, as HTTP clients give one. */
    private static Function<String, String> headers(String... nameValues) {
        Map<String, String> m = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
        for (int i = 0; i < nameValues.length; i += 2) {
            m.put(nameValues[i], nameValues[i + 1]);
        }
        return m::get;
    }

    private static Duration retryAfter(String... nameValues) {
        return HttpErrors.retryAfter(headers(nameValues), CLOCK);
    }

    @Test
    void retryAfterIsReadInEachForm() {
        assertThat(HttpErrors.forStatus("p", "e", 429, headers("Retry-After", "7"), "", CLOCK)
                        .retryAfter())
                .contains(Duration.ofSeconds(7));
        assertThat(retryAfter("retry-after", "Fri, 27 Nov 2026 10:00:30 GMT")).isEqualTo(Duration.ofSeconds(30));
        assertThat(retryAfter("Retry-After", "Fri, 27 Nov 2026 09:00:00 GMT")).isEqualTo(Duration.ZERO);
        assertThat(retryAfter("Retry-After", "3", "retry-after-ms", "250")).isEqualTo(Duration.ofMillis(250));
        assertThat(retryAfter("Retry-After", "3", "x-ms-retry-after-ms", "1500"))
                .isEqualTo(Duration.ofMillis(1500));
        assertThat(retryAfter("retry-after-ms", "250", "x-ms-retry-after-ms", "1500"))
                .as("Azure's own header first, as its clients read it")
                .isEqualTo(Duration.ofMillis(1500));
        assertThat(retryAfter("x-ms-retry-after-ms", "soon", "Retry-After", "2"))
                .isEqualTo(Duration.ofSeconds(2));
        assertThat(retryAfter("Retry-After", "soon")).isNull();
        assertThat(retryAfter()).isNull();
        assertThat(HttpErrors.forStatus("p", "e", 503, headers("Retry-After", "2"), "", CLOCK)
                        .retryAfter())
                .contains(Duration.ofSeconds(2));
        assertThat(HttpErrors.forStatus("p", "e", 429, headers("x-ms-retry-after-ms", "40"), "", CLOCK)
                        .retryAfter())
                .contains(Duration.ofMillis(40));
    }

    static Stream<Arguments> retryAfterByStatusClass() {
        return Stream.of(
                Arguments.of(400, false),
                Arguments.of(401, false),
                Arguments.of(404, false),
                Arguments.of(429, true),
                Arguments.of(500, true),
                Arguments.of(503, true),
                Arguments.of(504, true));
    }

    @ParameterizedTest(name = "HTTP {0} carries Retry-After: {1}")
    @MethodSource("retryAfterByStatusClass")
    void onlyRetryableStatusesCarryTheRetryAfter(int status, boolean carries) {
        InferenceException e = HttpErrors.forStatus("p", "e", status, headers("Retry-After", "5"), "", CLOCK);
        assertThat(e.retryAfter().isPresent()).isEqualTo(carries);
        assertThat(e.statusCode()).isEqualTo(status);
    }

    @Test
    void streamErrorsAreMappedFromTheirData() {
        assertThat(HttpErrors.forStreamError("p", "e", "{\"error\":{\"code\":429,\"message\":\"slow down\"}}"))
                .isInstanceOf(RateLimitedException.class)
                .hasMessageContaining("slow down");
        assertThat(HttpErrors.forStreamError("p", "e", "{\"code\":500,\"message\":\"slot unavailable\"}"))
                .isInstanceOf(ProviderUnavailableException.class);
        assertThat(HttpErrors.forStreamError("p", "e", "engine died"))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("engine died");
        assertThat(HttpErrors.forStreamError("p", "e", ""))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("error event");
    }
}
