// Internal: storage and locking shared by the account books (account.cpp, book_impl.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <shared_mutex>
#include <system_error>

#if defined(__GLIBC__)
#include <pthread.h>
#endif

namespace marginkernel::detail {

constexpr std::size_t kAlign = 64;

struct AlignedFree {
    void operator()(double* p) const noexcept { ::operator delete[](p, std::align_val_t(kAlign)); }
};
// A zero-filled, 64-byte aligned array of doubles.
using Buffer = std::unique_ptr<double[], AlignedFree>;

inline Buffer make_buffer(std::size_t n) {
    auto* p = static_cast<double*>(::operator new[](std::max<std::size_t>(n, 1) * sizeof(double),
                                                    std::align_val_t(kAlign)));
    std::fill(p, p + std::max<std::size_t>(n, 1), 0.0);
    return Buffer(p);
}

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

}  // namespace marginkernel::detail
