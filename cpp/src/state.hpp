// Internal: storage and locking shared by the account books (account.cpp, book_impl.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <shared_mutex>
#include <system_error>
#include <vector>

#include "buffer.hpp"
#include "marginkernel/account.hpp"  // UnknownId

#if defined(__GLIBC__)
#include <pthread.h>
#endif

namespace marginkernel::detail {

// The reader/writer lock of a book and of each account. On glibc it is a pthread rwlock that
// prefers writers (a waiting fill or market update blocks new readers, so a stream of what-ifs cannot
// starve it); elsewhere std::shared_mutex. Locks are never taken recursively, as that kind requires.
#if defined(__GLIBC__)
class RwMutex {
public:
    RwMutex() {
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&lock_, &attr);
        pthread_rwlockattr_destroy(&attr);
    }
    ~RwMutex() { pthread_rwlock_destroy(&lock_); }
    RwMutex(const RwMutex&) = delete;
    RwMutex& operator=(const RwMutex&) = delete;

    void lock() { ok(pthread_rwlock_wrlock(&lock_)); }
    bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
    void unlock() { pthread_rwlock_unlock(&lock_); }
    void lock_shared() { ok(pthread_rwlock_rdlock(&lock_)); }
    bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
    void unlock_shared() { pthread_rwlock_unlock(&lock_); }

private:
    static void ok(int rc) {
        if (rc != 0) throw std::system_error(rc, std::generic_category(), "marginkernel book lock");
    }
    pthread_rwlock_t lock_;
};
#else
using RwMutex = std::shared_mutex;
#endif

// A book's accounts, by id (both books keep them so; the caller holds the book's lock).
template <class Account>
using AccountTable = std::vector<std::unique_ptr<Account>>;

// Appends `count` new accounts, all or none (an allocation failure leaves the table as it was);
// returns the first new id.
template <class Account>
std::int64_t append_accounts(AccountTable<Account>& accounts, std::size_t count) {
    const auto first = static_cast<std::int64_t>(accounts.size());
    AccountTable<Account> fresh;
    fresh.reserve(count);
    for (std::size_t k = 0; k < count; ++k) fresh.push_back(std::make_unique<Account>());
    accounts.reserve(accounts.size() + count);
    for (auto& a : fresh) accounts.push_back(std::move(a));
    return first;
}

// Account `a`, or UnknownId naming it.
template <class Account>
Account& account_at(const AccountTable<Account>& accounts, std::int64_t a) {
    if (a < 0 || static_cast<std::size_t>(a) >= accounts.size()) throw UnknownId("account", a, accounts.size());
    return *accounts[static_cast<std::size_t>(a)];
}

}  // namespace marginkernel::detail
