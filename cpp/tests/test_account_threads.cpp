// The thread-safety model of account.hpp, exercised: several reader threads query account 0 while
// one writer fills it (toggling a position so that the account alternates between two exact states),
// a second writer opens positions on other accounts (creating risk-unit slots concurrently), and a
// market thread updates a risk unit that account 0 does not hold. Every what-if a reader sees must be
// one of the two exact states (never a torn mix), and at the end every account must equal a
// from-scratch recomputation. Build with -DMARGINKERNEL_SANITIZE=thread to have TSan check it too.
#include <atomic>
#include <thread>

#include "testing.hpp"

using namespace marginkernel;

int main() {
    std::mt19937_64 rng(7);
    mktest::Market m = mktest::random_market(rng, 9, 67, 3);  // units 0, 1, 2; instruments i % 3
    MarginRule rule;
    rule.gain_factor = 0.5;
    rule.mm_factor = 0.75;
    const std::int64_t n_accounts = 200;
    AccountBook book(m.view(), m.weight.data(), m.fx.data(), rule, static_cast<std::size_t>(n_accounts));

    // Account 0: a fixed position in unit 0 (instrument 0) and a toggled one in unit 1 (instrument 1,
    // its only position there, so closing it resets P[0, 1] to exactly 0 and the states repeat).
    book.add_fill(0, 0, 4.0);
    book.add_fill(0, 3, -2.0);
    const WhatIf state_a = book.what_if(0, 0, 1.0);
    const Margin margin_a = book.margin(0);
    book.add_fill(0, 1, 3.0);
    const WhatIf state_b = book.what_if(0, 0, 1.0);
    const Margin margin_b = book.margin(0);
    book.add_fill(0, 1, -3.0);
    if (!(state_a.im != state_b.im)) {
        std::printf("test set-up: the two states must differ\n");
        return 1;
    }
    // Account 1: read-only, constant.
    book.add_fill(1, 4, 1.0);
    const WhatIf fixed = book.what_if(1, 4, -2.0);

    std::atomic<bool> writers_done{false};
    std::atomic<long> reads{0}, bad_reads{0}, updates{0};
    const auto same = [](const WhatIf& x, const WhatIf& y) {
        return x.im == y.im && x.mm == y.mm && x.im_before == y.im_before && x.unit_loss == y.unit_loss &&
               x.worst_scenario == y.worst_scenario && x.unit == y.unit;
    };

    std::vector<std::thread> threads;
    for (int r = 0; r < 3; ++r)
        threads.emplace_back([&] {
            long n = 0, bad = 0;
            while (!writers_done.load(std::memory_order_acquire)) {
                const WhatIf w = book.what_if(0, 0, 1.0);
                if (!same(w, state_a) && !same(w, state_b)) ++bad;
                const Margin g = book.margin(0);
                if (!(g.im == margin_a.im && g.mm == margin_a.mm) && !(g.im == margin_b.im && g.mm == margin_b.mm)) ++bad;
                const Check c = book.check(0, 0, 1.0, 0.5 * (state_a.im + state_b.im));
                if (c.accepted != (c.after.im <= 0.5 * (state_a.im + state_b.im) || c.after.im <= c.after.im_before)) ++bad;
                if (!same(book.what_if(1, 4, -2.0), fixed)) ++bad;
                ++n;
            }
            reads += n;
            bad_reads += bad;
        });
    // Writer of account 0.
    threads.emplace_back([&] {
        for (int k = 0; k < 20000; ++k) {
            book.add_fill(0, 1, 3.0);
            book.add_fill(0, 1, -3.0);
        }
    });
    // Writer of accounts 2..: first fills in units 1 and 2 (new slots), concurrently with the above.
    threads.emplace_back([&] {
        for (int round = 0; round < 20; ++round)
            for (std::int64_t a = 2; a < n_accounts; ++a)
                book.add_fill(a, static_cast<std::int32_t>(1 + (a + round) % 8), 0.25 * static_cast<double>(1 + a % 5));
    });
    // Market updates of unit 2 (account 0 and 1 do not hold it), alternating two sets of rows.
    const auto ids = book.instruments_of(2);
    std::vector<double> rows_a(ids.size() * m.ns), rows_b(ids.size() * m.ns);
    for (std::size_t k = 0; k < ids.size(); ++k)
        for (std::size_t s = 0; s < m.ns; ++s) {
            rows_a[k * m.ns + s] = m.risk[static_cast<std::size_t>(ids[k]) * m.ns + s];
            rows_b[k * m.ns + s] = 1.5 * rows_a[k * m.ns + s] - 3.0;
        }
    std::thread market([&] {
        for (int k = 0; k < 200; ++k) {
            book.update_unit(2, (k % 2 ? rows_a : rows_b).data(), ids.size());
            ++updates;
        }
    });
    // Wait for the writers (not the readers), then stop the readers.
    threads[3].join();
    threads[4].join();
    writers_done.store(true, std::memory_order_release);
    for (int r = 0; r < 3; ++r) threads[static_cast<std::size_t>(r)].join();
    market.join();

    CHECK(bad_reads.load() == 0);
    CHECK(reads.load() > 0);
    CHECK(updates.load() == 200);
    // Final state: unit 2 rows are rows_a after an even number of updates (last k = 199 -> rows_a).
    for (std::size_t k = 0; k < ids.size(); ++k)
        for (std::size_t s = 0; s < m.ns; ++s)
            m.risk[static_cast<std::size_t>(ids[k]) * m.ns + s] = rows_a[k * m.ns + s];
    CHECK(book.margin(0).im == margin_a.im);
    for (std::int64_t a = 0; a < n_accounts; ++a) {
        const auto s = mktest::from_scratch(m, book.positions(a), rule.gain_factor);
        CHECK_CLOSE(book.margin(a).im, s.im, 1e-12 * s.scale);
    }
    std::printf("reads %ld, market updates %ld, bad reads %ld\n", reads.load(), updates.load(), bad_reads.load());
    if (mktest::failures) {
        std::printf("%d check(s) failed\n", mktest::failures);
        return 1;
    }
    std::printf("thread-safety test passed\n");
    return 0;
}
