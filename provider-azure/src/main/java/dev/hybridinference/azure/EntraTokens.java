package dev.hybridinference.azure;

import com.azure.core.credential.AccessToken;
import com.azure.core.credential.TokenCredential;
import com.azure.core.credential.TokenRequestContext;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.spi.Secrets;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Entra ID bearer tokens from a {@link TokenCredential}, cached and fetched again shortly before they
 * expire (tokens last about an hour). Thread-safe: one caller refreshes while the others wait for it,
 * and a token still valid is handed out while a refresh that failed is retried on the next call.
 */
final class EntraTokens implements Supplier<String> {
    /** How long before its expiry a token is replaced. */
    static final Duration REFRESH_BEFORE = Duration.ofMinutes(5);

    private final String providerId;
    private final TokenCredential credential;
    private final TokenRequestContext request;
    private final Clock clock;
    private AccessToken current;

    EntraTokens(String providerId, TokenCredential credential, List<String> scopes, Clock clock) {
        this.providerId = providerId;
        this.credential = Objects.requireNonNull(credential, "credential");
        this.request = new TokenRequestContext().setScopes(List.copyOf(scopes));
        this.clock = clock;
    }

    @Override
    public synchronized String get() {
        OffsetDateTime now = OffsetDateTime.now(clock);
        if (current != null && now.plus(REFRESH_BEFORE).isBefore(current.getExpiresAt())) {
            return current.getToken();
        }
        AccessToken fresh;
        try {
            fresh = credential.getTokenSync(request);
        } catch (RuntimeException e) {
            if (current != null && now.isBefore(current.getExpiresAt())) {
                return current.getToken(); // still valid: try again on the next call
            }
            throw new AuthenticationException(
                    "cannot get an Entra ID token for scopes " + request.getScopes() + ": " + e.getMessage(),
                    providerId,
                    null,
                    0,
                    null,
                    e);
        }
        if (fresh == null || fresh.getToken() == null || fresh.getToken().isEmpty()) {
            throw new AuthenticationException(
                    "the Entra ID credential returned no token for scopes " + request.getScopes(),
                    providerId,
                    null,
                    0,
                    null,
                    null);
        }
        Secrets.register(fresh.getToken());
        current = fresh;
        return fresh.getToken();
    }
}
