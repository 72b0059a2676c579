package dev.hybridinference.core.internal.openai;

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
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class HttpErrorsTest {
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
            InferenceException e = HttpErrors.fromResponse(
                    "p", "http://h:8000", status, null, null, String.format(shape, "went wrong", status), CLOCK);
            assertThat(e).isInstanceOf(type);
            assertThat(e.isRetryable()).isEqualTo(retryable);
            assertThat(e.getMessage()).startsWith("p (http://h:8000): ").contains("went wrong");
        }
    }

    @Test
    void contextOverflowIsItsOwnType() {
        String msg = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens";
        InferenceException e =
                HttpErrors.fromResponse("p", "e", 400, null, null, String.format(NESTED, msg, 400), CLOCK);
        assertThat(e).isInstanceOf(ContextLengthExceededException.class);
        assertThat(e.isRetryable()).isFalse();
    }

    @Test
    void contentFilterIsItsOwnType() {
        String body = "{\"error\":{\"message\":\"filtered\",\"code\":\"content_filter\"}}";
        assertThat(HttpErrors.fromResponse("p", "e", 400, null, null, body, CLOCK))
                .isInstanceOf(ContentFilteredException.class);
    }

    @Test
    void stringAndTextBodiesKeepTheirMessage() {
        assertThat(HttpErrors.fromResponse("p", "e", 401, null, null, "{\"error\":\"Unauthorized\"}", CLOCK))
                .isInstanceOf(AuthenticationException.class)
                .hasMessageContaining("Unauthorized");
        assertThat(HttpErrors.fromResponse("p", "e", 502, null, null, "<html>bad gateway</html>", CLOCK))
                .hasMessageContaining("<html>bad gateway</html>");
        assertThat(HttpErrors.fromResponse("p", "e", 503, null, null, "", CLOCK))
                .hasMessageContaining("service unavailable");
        assertThat(HttpErrors.fromResponse("p", "e", 500, null, null, "x".repeat(5000), CLOCK)
                        .getMessage()
                        .length())
                .isLessThan(400);
    }

    @Test
    void retryAfterIsReadInEachForm() {
        assertThat(HttpErrors.fromResponse("p", "e", 429, "7", null, "", CLOCK).retryAfter())
                .contains(Duration.ofSeconds(7));
        assertThat(HttpErrors.parseRetryAfter("Fri, 27 Nov 2026 10:00:30 GMT", null, CLOCK))
                .isEqualTo(Duration.ofSeconds(30));
        assertThat(HttpErrors.parseRetryAfter("Fri, 27 Nov 2026 09:00:00 GMT", null, CLOCK))
                .isEqualTo(Duration.ZERO);
        assertThat(HttpErrors.parseRetryAfter("3", "250", CLOCK)).isEqualTo(Duration.ofMillis(250));
        assertThat(HttpErrors.parseRetryAfter("soon", null, CLOCK)).isNull();
        assertThat(HttpErrors.parseRetryAfter(null, null, CLOCK)).isNull();
        assertThat(HttpErrors.fromResponse("p", "e", 503, "2", null, "", CLOCK).retryAfter())
                .contains(Duration.ofSeconds(2));
    }
}
