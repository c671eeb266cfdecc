#pragma once
// What was made from a record's exact bytes (a parsed message, a response), kept so that the same
// bytes read again are not parsed or made again. An entry is reused only when the bytes are the
// same as when it was made, compared in full: whatever changes the record changes its bytes, so
// nothing is handed out that a fresh parse of the same bytes would not give. A key only picks the
// slot (one record per key). Bounded in bytes, least recently used first out; thread-safe.
#include <cstddef>
#include <initializer_list>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace physio {

// A memo key from ids (tenant, patient, locale...), which never hold a NUL: joined by NULs, so the
// parts cannot run into each other.
inline std::string MemoKey(std::initializer_list<std::string_view> parts) {
  std::size_t size = parts.size();
  for (const auto part : parts) size += part.size();
  std::string key;
  key.reserve(size);
  bool first = true;
  for (const auto part : parts) {
    if (!first) key.push_back('\0');
    key.append(part);
    first = false;
  }
  return key;
}

template <typename Value>
class BytesMemo {
 public:
  // `max_bytes`: the bound on what the entries hold (keys, bytes and each value's stated cost);
  // 0 turns the memo off.
  explicit BytesMemo(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // The value made from exactly `bytes` under `key`, or nullopt.
  std::optional<Value> Find(const std::string& key, std::string_view bytes) {
    std::lock_guard lock(mu_);
    const auto found = by_key_.find(key);
    if (found == by_key_.end() || found->second->bytes != bytes) return std::nullopt;
    order_.splice(order_.begin(), order_, found->second);
    return found->second->value;
  }

  // Remembers `value`, made from `bytes`, replacing what `key` held. `value_cost`: what the value
  // holds beyond the entry's key and bytes (an estimate will do).
  void Remember(const std::string& key, std::string_view bytes, Value value, std::size_t value_cost) {
    Entry made{key, std::string(bytes), std::move(value), 0};
    made.cost = key.size() * 2 + made.bytes.size() + value_cost + 128;
    if (made.cost > max_bytes_) return;  // off, or one entry larger than the whole bound
    std::lock_guard lock(mu_);
    if (const auto old = by_key_.find(key); old != by_key_.end()) {
      bytes_ -= old->second->cost;
      order_.erase(old->second);
      by_key_.erase(old);
    }
    while (!order_.empty() && bytes_ + made.cost > max_bytes_) {
      bytes_ -= order_.back().cost;
      by_key_.erase(order_.back().key);
      order_.pop_back();
    }
    bytes_ += made.cost;
    order_.push_front(std::move(made));
    by_key_.emplace(order_.front().key, order_.begin());
  }

  std::size_t bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  std::size_t entries() const {
    std::lock_guard lock(mu_);
    return order_.size();
  }

 private:
  struct Entry {
    std::string key;
    std::string bytes;
    Value value;
    std::size_t cost;
  };
  using Order = std::list<Entry>;  // most recently used first

  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  Order order_;
  std::unordered_map<std::string, typename Order::iterator> by_key_;
  std::size_t bytes_ = 0;
};

}  // namespace physio
