#include "harness/lab/link.hpp"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <libmnl/libmnl.h>
#include <thread>

#include "harness/core/error.hpp"

namespace backlog_lab::lab {
namespace {

struct ipv4_prefix {
  in_addr addr{};
  uint8_t length = 32;
};

// "198.51.100.1/24", "198.51.100.1" (= /32), or "default" when allowed (= 0.0.0.0/0).
ipv4_prefix parse_cidr(const std::string& text, bool allow_default) {
  ipv4_prefix p;
  if (allow_default && text == "default") {
    p.length = 0;
    return p;
  }
  auto expected = [&] {
    return input_error(
        "IPv4 address '" + text + "'",
        std::string("an IPv4 address with optional prefix, such as 198.51.100.1/24") +
            (allow_default ? ", or \"default\"" : ""));
  };
  auto slash = text.find('/');
  std::string host = text.substr(0, slash);
  if (::inet_pton(AF_INET, host.c_str(), &p.addr) != 1) throw expected();
  if (slash != std::string::npos) {
    std::string len = text.substr(slash + 1);
    if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos)
      throw expected();
    int n = std::stoi(len);
    if (n > 32) throw expected();
    p.length = static_cast<uint8_t>(n);
  }
  return p;
}

std::array<uint8_t, 6> parse_mac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &tail) != 6)
    throw input_error("MAC address '" + text + "'", "six hex bytes such as 02:62:6c:00:00:0a");
  for (int i = 0; i < 6; ++i)
    mac[i] = static_cast<uint8_t>(b[i]);
  return mac;
}

void put_mac(nlmsghdr* nlh, uint16_t type, const std::string& mac) {
  auto bytes = parse_mac(mac);
  mnl_attr_put(nlh, type, bytes.size(), bytes.data());
}

// The kernel's extended-ack message, if it sent one (NETLINK_EXT_ACK).
std::string extack_message(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t offset = sizeof(nlmsgerr);
  // Without NETLINK_CAP_ACK the request's payload is echoed before the TLVs.
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  std::string message;
  mnl_attr_parse(
      nlh, static_cast<unsigned>(offset),
      [](const nlattr* attr, void* data) {
        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
            mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
          *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
        return MNL_CB_OK;
      },
      &message);
  return message;
}

} // namespace

rtnl_socket::rtnl_socket(const netns& ns) : ns_name_(ns.name()) {
  int err = 0;
  {
    netns_scope in(ns);
    sock_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    err = errno;
  }
  if (!sock_)
    throw lab_error(errno_message("opening rtnetlink socket in namespace '" + ns_name_ + "'", err));
  int one = 1;
  // Short acks that carry the kernel's own explanation of a refusal.
  mnl_socket_setsockopt(sock_, NETLINK_CAP_ACK, &one, sizeof one);
  mnl_socket_setsockopt(sock_, NETLINK_EXT_ACK, &one, sizeof one);
  if (mnl_socket_bind(sock_, 0, MNL_SOCKET_AUTOPID) < 0) {
    err = errno;
    mnl_socket_close(sock_);
    sock_ = nullptr;
    throw lab_error(errno_message("binding rtnetlink socket in namespace '" + ns_name_ + "'", err));
  }
}

rtnl_socket::rtnl_socket(rtnl_socket&& other) noexcept
    : sock_(other.sock_), ns_name_(std::move(other.ns_name_)), seq_(other.seq_) {
  other.sock_ = nullptr;
}

rtnl_socket& rtnl_socket::operator=(rtnl_socket&& other) noexcept {
  if (this != &other) {
    if (sock_) mnl_socket_close(sock_);
    sock_ = other.sock_;
    ns_name_ = std::move(other.ns_name_);
    seq_ = other.seq_;
    other.sock_ = nullptr;
  }
  return *this;
}

rtnl_socket::~rtnl_socket() {
  if (sock_) mnl_socket_close(sock_);
}

nlmsghdr* rtnl_socket::start(uint16_t type, uint16_t flags) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf_);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  nlh->nlmsg_seq = ++seq_;
  return nlh;
}

void rtnl_socket::execute(const std::string& what) {
  const auto* request = reinterpret_cast<const nlmsghdr*>(buf_);
  uint32_t seq = request->nlmsg_seq;
  uint16_t type = request->nlmsg_type;
  auto fail = [&](int err, const std::string& extack) {
    std::string text = errno_message(what + " in namespace '" + ns_name_ + "'", err);
    if (!extack.empty()) text += "; kernel: " + extack;
    return lab_error(text);
  };
  if (mnl_socket_sendto(sock_, buf_, request->nlmsg_len) < 0) throw fail(errno, {});
  // Replies reuse buf_: the request is no longer needed.
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf_, sizeof buf_);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(errno, "no reply");
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf_); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != seq) continue;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (err->error != 0) throw fail(-err->error, extack_message(nlh));
        return;
      }
      // A GETLINK answer: keep what get_link() reports.
      if (type == RTM_GETLINK && nlh->nlmsg_type == RTM_NEWLINK) {
        const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
        last_link_.index = static_cast<unsigned>(ifi->ifi_index);
        last_link_.admin_up = ifi->ifi_flags & IFF_UP;
        last_link_.carrier = ifi->ifi_flags & IFF_LOWER_UP;
        mnl_attr_parse(
            nlh, sizeof(ifinfomsg),
            [](const nlattr* attr, void* data) {
              if (mnl_attr_get_type(attr) == IFLA_OPERSTATE &&
                  mnl_attr_validate(attr, MNL_TYPE_U8) == 0)
                static_cast<link_state*>(data)->operational = mnl_attr_get_u8(attr) == IF_OPER_UP;
              return MNL_CB_OK;
            },
            &last_link_);
      }
    }
  }
}

void rtnl_socket::create_veth(const std::string& name, const netns& peer_ns,
                              const std::string& peer_name, const std::string& mac,
                              const std::string& peer_mac) {
  nlmsghdr* nlh = start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (!mac.empty()) put_mac(nlh, IFLA_ADDRESS, mac);
  // One queue each way, asked for explicitly: otherwise veth creates one per possible CPU and
  // then shrinks to one, which waits for an RCU grace period (~1 ms per veth on 6.18).
  mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
  mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow an ifinfomsg of its own inside VETH_INFO_PEER.
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(nlh));
  std::memset(peer_ifi, 0, sizeof *peer_ifi);
  peer_ifi->ifi_family = AF_UNSPEC;
  nlh->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns.fd()));
  if (!peer_mac.empty()) put_mac(nlh, IFLA_ADDRESS, peer_mac);
  mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
  mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  execute("creating veth '" + name + "' (peer '" + peer_name + "' in namespace '" + peer_ns.name() +
          "')");
}

void rtnl_socket::create_bridge(const std::string& name) {
  nlmsghdr* nlh = start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, linkinfo);
  execute("creating bridge '" + name + "'");
}

void rtnl_socket::set_master(const std::string& link, const std::string& bridge) {
  unsigned master = link_index(bridge);
  nlmsghdr* nlh = start(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  // Index 0 plus IFLA_IFNAME: the kernel looks the link up by name.
  mnl_attr_put_strz(nlh, IFLA_IFNAME, link.c_str());
  mnl_attr_put_u32(nlh, IFLA_MASTER, master);
  execute("enslaving link '" + link + "' to bridge '" + bridge + "'");
}

void rtnl_socket::set_link_up(const std::string& link, bool up) {
  nlmsghdr* nlh = start(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, link.c_str());
  execute(std::string("setting link '") + link + "' " + (up ? "up" : "down"));
}

namespace {
void put_address(nlmsghdr* nlh, unsigned index, const ipv4_prefix& p) {
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = p.length;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = index;
  mnl_attr_put(nlh, IFA_LOCAL, sizeof p.addr, &p.addr);
  mnl_attr_put(nlh, IFA_ADDRESS, sizeof p.addr, &p.addr);
}
} // namespace

void rtnl_socket::add_address(const std::string& link, const std::string& cidr) {
  ipv4_prefix p = parse_cidr(cidr, false);
  unsigned index = link_index(link);
  put_address(start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL), index, p);
  execute("adding address " + cidr + " to link '" + link + "'");
}

void rtnl_socket::delete_address(const std::string& link, const std::string& cidr) {
  ipv4_prefix p = parse_cidr(cidr, false);
  unsigned index = link_index(link);
  put_address(start(RTM_DELADDR, 0), index, p);
  execute("deleting address " + cidr + " from link '" + link + "'");
}

void rtnl_socket::add_route(const std::string& destination, const std::string& gateway,
                            bool replace) {
  ipv4_prefix dst = parse_cidr(destination, true);
  ipv4_prefix via = parse_cidr(gateway, false);
  nlmsghdr* nlh = start(
      RTM_NEWROUTE, static_cast<uint16_t>(NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL)));
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = dst.length;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT; // what `ip route add` uses
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  if (dst.length > 0) mnl_attr_put(nlh, RTA_DST, sizeof dst.addr, &dst.addr);
  mnl_attr_put(nlh, RTA_GATEWAY, sizeof via.addr, &via.addr);
  execute("adding route " + destination + " via " + gateway);
}

void rtnl_socket::add_local_route(const std::string& destination, const std::string& link) {
  ipv4_prefix dst = parse_cidr(destination, false);
  unsigned index = link_index(link);
  nlmsghdr* nlh = start(RTM_NEWROUTE, static_cast<uint16_t>(NLM_F_CREATE | NLM_F_EXCL));
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = dst.length;
  rtm->rtm_table = RT_TABLE_LOCAL;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_HOST;
  rtm->rtm_type = RTN_LOCAL;
  mnl_attr_put(nlh, RTA_DST, sizeof dst.addr, &dst.addr);
  mnl_attr_put_u32(nlh, RTA_OIF, index);
  execute("adding local route " + destination + " on link '" + link + "'");
}

namespace {
void put_neighbour(nlmsghdr* nlh, unsigned index, const ipv4_prefix& p, uint16_t state) {
  auto* ndm = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  ndm->ndm_family = AF_INET;
  ndm->ndm_ifindex = static_cast<int>(index);
  ndm->ndm_state = state;
  mnl_attr_put(nlh, NDA_DST, sizeof p.addr, &p.addr);
}
} // namespace

void rtnl_socket::pin_neighbour(const std::string& link, const std::string& address,
                                const std::string& mac) {
  ipv4_prefix p = parse_cidr(address, false);
  unsigned index = link_index(link);
  nlmsghdr* nlh = start(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  put_neighbour(nlh, index, p, NUD_PERMANENT);
  put_mac(nlh, NDA_LLADDR, mac);
  execute("pinning neighbour " + address + " to " + mac + " on link '" + link + "'");
}

void rtnl_socket::delete_neighbour(const std::string& link, const std::string& address) {
  ipv4_prefix p = parse_cidr(address, false);
  unsigned index = link_index(link);
  put_neighbour(start(RTM_DELNEIGH, 0), index, p, 0);
  execute("deleting neighbour " + address + " on link '" + link + "'");
}

unsigned rtnl_socket::link_index(const std::string& link) {
  return get_link(link).index;
}

link_state rtnl_socket::get_link(const std::string& link) {
  nlmsghdr* nlh = start(RTM_GETLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, link.c_str());
  // Statistics would only make the reply bigger.
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  last_link_ = {};
  execute("looking up link '" + link + "'");
  if (last_link_.index == 0)
    throw lab_error("looking up link '" + link + "' in namespace '" + ns_name_ + "': no answer");
  return last_link_;
}

void rtnl_socket::wait_operational(const std::string& link, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    link_state state = get_link(link);
    if (state.operational) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw lab_error("link '" + link + "' in namespace '" + ns_name_ +
                      "' is not operational after " + std::to_string(limit.count()) +
                      " ms (admin " + (state.admin_up ? "up" : "down") + ", carrier " +
                      (state.carrier ? "on" : "off") + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void create_veth(const netns& ns, const std::string& name, const netns& peer_ns,
                 const std::string& peer_name) {
  rtnl_socket(ns).create_veth(name, peer_ns, peer_name);
}

void set_link_up(const netns& ns, const std::string& link, bool up) {
  rtnl_socket(ns).set_link_up(link, up);
}

void add_address(const netns& ns, const std::string& link, const std::string& cidr) {
  rtnl_socket(ns).add_address(link, cidr);
}

void delete_address(const netns& ns, const std::string& link, const std::string& cidr) {
  rtnl_socket(ns).delete_address(link, cidr);
}

void add_route(const netns& ns, const std::string& destination, const std::string& gateway) {
  rtnl_socket(ns).add_route(destination, gateway);
}

} // namespace backlog_lab::lab
