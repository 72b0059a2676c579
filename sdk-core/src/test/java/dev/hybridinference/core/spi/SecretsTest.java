package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.InferenceException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class SecretsTest {
    @Test
    void masksRegisteredValuesWherever_theyStand() {
        Secrets.register("  hunter2-registered-value ");
        assertThat(Secrets.redact("a hunter2-registered-value b hunter2-registered-value"))
                .isEqualTo("a [REDACTED] b [REDACTED]");
        assertThat(Secrets.containsRegistered("x hunter2-registered-value")).isTrue();
    }

    @Test
    void ignoresValuesTooShortToMaskSafely() {
        Secrets.register("abc");
        Secrets.register("");
        Secrets.register(null);
        assertThat(Secrets.redact("abc is fine")).isEqualTo("abc is fine");
    }

    @Test
    void masksCredentialsThatWereNeverRegistered() {
        assertThat(Secrets.redact("sent Authorization: Bearer eyJhbGciOi.x-y_z and more"))
                .isEqualTo("sent Authorization: Bearer [REDACTED] and more");
        assertThat(Secrets.redact("{\"api-key\":\"0123456789abcdef\"}")).isEqualTo("{\"api-key\":\"[REDACTED]\"}");
        assertThat(Secrets.redact("headers {authorization=[Bearer tok-123456]}"))
                .isEqualTo("headers {authorization=[Bearer [REDACTED]]}");
        assertThat(Secrets.redact("password=swordfish1;")).isEqualTo("password=[REDACTED];");
        assertThat(Secrets.redact("no secrets here: HTTP 500")).isEqualTo("no secrets here: HTTP 500");
        assertThat(Secrets.redact("cannot reach https://bob:pa55word-x@host:8000/v1 now"))
                .isEqualTo("cannot reach https://bob:[REDACTED]@host:8000/v1 now");
        assertThat(Secrets.redact("mail me at bob@example.com")).isEqualTo("mail me at bob@example.com");
    }

    @Test
    void exceptionMessagesCausesAndAttemptsAreRedacted() {
        Secrets.register("sk-cause-secret-9876");
        InferenceException e = new InferenceException(
                "server said: key sk-cause-secret-9876 is invalid",
                "p",
                "http://h",
                401,
                null,
                new IOException("echo: sk-cause-secret-9876", new IllegalStateException("sk-cause-secret-9876")));
        StringWriter trace = new StringWriter();
        e.printStackTrace(new PrintWriter(trace));
        assertThat(trace.toString()).doesNotContain("sk-cause-secret-9876").contains("java.io.IOException");
        Attempt a = new Attempt("p", "", "", Attempt.Outcome.FAILED, Duration.ZERO, "error sk-cause-secret-9876");
        assertThat(a.error()).isEqualTo("error [REDACTED]");
    }

    @Test
    void anExceptionWithoutSecretsKeepsItsOwnCause() {
        IOException cause = new IOException("connection reset");
        InferenceException e = new InferenceException("failed", "p", null, 0, null, cause);
        assertThat(e.getCause()).isSameAs(cause);
    }

    @Test
    void aRefreshingTokenDoesNotGrowTheRegistryWithoutBound() {
        for (int i = 0; i < Secrets.MAX_VALUES + 50; i++) {
            Secrets.register("rotating-token-" + i);
        }
        String newest = "rotating-token-" + (Secrets.MAX_VALUES + 49);
        assertThat(Secrets.redact(newest)).isEqualTo("[REDACTED]");
        assertThat(Secrets.containsRegistered("rotating-token-0 ")).isFalse();
    }
}
